import ArgumentParser
import CourierSpool

struct RequeueCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue",
        abstract: "Send dead letters again: append them to the peer's spool and remove them from the store.",
        discussion: """
            Each chosen dead letter is appended to PEER's spool as a new message (a new \
            sequence number; the same payload, expiry and flags) and then removed from the \
            dead letters; the node sends it the next time it runs. A crash in between leaves \
            it both requeued and still listed, never lost. Choose by the sequence number \
            the message had (--seq, as dead-letters shows it), by dead-letter id (--id), or \
            --all.

            This changes the spool, so the node must be stopped: if it runs, requeue says \
            so, naming its pid, and exits 1 without changing anything.

            Examples:
              courier-spool requeue /var/lib/courier/p --peer C --seq 1001 --seq 1002
              courier-spool requeue /var/lib/courier/p --peer C --all
            """)

    @OptionGroup var dataDirectory: DataDirectoryArgument

    @Option(help: ArgumentHelp("The peer whose dead letters to requeue (its node id). Example: --peer C", valueName: "PEER"))
    var peer: String

    @Option(name: .customLong("seq"), parsing: .upToNextOption, help: ArgumentHelp(
        "The original sequence numbers of the dead letters to requeue (repeatable). Example: --seq 1001 1002",
        valueName: "N"))
    var sequenceNumbers: [UInt64] = []

    @Option(name: .customLong("id"), parsing: .upToNextOption, help: ArgumentHelp(
        "The ids of the dead letters to requeue, as dead-letters lists them (repeatable). Example: --id 3",
        valueName: "ID"))
    var ids: [UInt64] = []

    @Flag(help: "Requeue every dead letter of the peer.")
    var all = false

    func validate() throws {
        let choices = (sequenceNumbers.isEmpty ? 0 : 1) + (ids.isEmpty ? 0 : 1) + (all ? 1 : 0)
        guard choices == 1 else {
            throw ValidationError("say which dead letters to requeue: --seq N…, --id ID… or --all (one of them)")
        }
    }

    func execute(in context: ToolContext) throws -> Int32 {
        let path = try dataDirectory.checked()
        try dataDirectory.checkedPeer(peer, inspector: SpoolInspector(path: path))
        let directory: DataDirectory
        do {
            directory = try DataDirectory(path: path)
        } catch where error.code == .locked {
            let holder = error.holderPID.map { " (pid \($0))" } ?? ""
            throw ToolError.failure(
                "a node is running on \(dataDirectory.path)\(holder); stop it before requeueing (nothing was changed)")
        } catch {
            throw ToolError.failure(ToolError.describe(error))
        }
        defer { directory.close() }
        let log = try ToolError.wrap { () throws(SpoolError) in try directory.outboundLog(for: peer) }
        let letters = try ToolError.wrap { () throws(SpoolError) in try log.deadLetters.list() }
        let chosen = try choose(from: letters)
        if chosen.isEmpty {
            context.standardOutput.write("Peer \(peer): no dead letters to requeue\n")
            return ExitStatus.success
        }
        for letter in chosen {
            let sequence = try ToolError.wrap { () throws(SpoolError) in try log.deadLetters.requeue(letter.id) }
            context.standardOutput.write(
                "requeued dead letter \(letter.id) (seq \(letter.record.sequenceNumber), \(DeadLettersCommand.reason(letter.reason))) as seq \(sequence)\n")
        }
        context.standardOutput.write(
            "Peer \(peer): \(chosen.count) requeued; the node sends \(chosen.count == 1 ? "it" : "them") when it next runs\n")
        return ExitStatus.success
    }

    /// The dead letters the command line names; every name must match before anything is
    /// changed.
    func choose(from letters: [DeadLetter]) throws(ToolError) -> [DeadLetter] {
        if all { return letters }
        var chosen: [DeadLetter] = []
        if !ids.isEmpty {
            for id in ids {
                guard let letter = letters.first(where: { $0.id == id }) else {
                    throw .failure("peer \(peer) has no dead letter with id \(id) (nothing was requeued)")
                }
                if !chosen.contains(where: { $0.id == id }) { chosen.append(letter) }
            }
            return chosen
        }
        for sequence in sequenceNumbers {
            let matches = letters.filter { $0.record.sequenceNumber == sequence }
            guard !matches.isEmpty else {
                throw .failure("peer \(peer) has no dead letter with seq \(sequence) (nothing was requeued)")
            }
            guard matches.count == 1 else {
                let names = matches.map { "id \($0.id) (stream \(hex($0.streamID)))" }.joined(separator: ", ")
                throw .failure("seq \(sequence) matches several dead letters, from different streams: \(names); choose with --id")
            }
            if !chosen.contains(where: { $0.id == matches[0].id }) { chosen.append(matches[0]) }
        }
        return chosen
    }
}
