import ArgumentParser
import CourierSpool

struct DeadLettersCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List a peer's dead letters: messages rejected, expired or out of attempts.",
        discussion: """
            Each dead letter has an id in the peer's store, the sequence number and stream \
            it was sent with, the reason (rejected by the receiving application, expired, or \
            dead-lettered after its attempts ran out), when it was given up on, its headers, \
            and its payload (a preview here; in full with --json, as a string when it is \
            UTF-8, else base64 under payload_base64). Send them again with requeue. Takes no lock and \
            never writes.

            Examples:
              courier-spool dead-letters /var/lib/courier/p --peer C
              courier-spool dead-letters /var/lib/courier/p --peer C --json
            """)

    @OptionGroup var dataDirectory: DataDirectoryArgument

    @Option(help: ArgumentHelp("The peer whose dead letters to list (its node id). Example: --peer C", valueName: "PEER"))
    var peer: String

    @Flag(help: "Write JSON, payloads included.")
    var json = false

    func execute(in context: ToolContext) throws -> Int32 {
        let path = try dataDirectory.checked()
        let inspector = SpoolInspector(path: path)
        try dataDirectory.checkedPeer(peer, inspector: inspector)
        let letters = try ToolError.wrap { () throws(SpoolError) in try inspector.deadLetters(peer: peer) }
        if json {
            let document = JSON.object([("peer", .string(peer)), ("dead_letters", .array(letters.map(Self.json)))])
            context.standardOutput.write(document.rendered() + "\n")
            return ExitStatus.success
        }
        guard !letters.isEmpty else {
            context.standardOutput.write("Peer \(peer): no dead letters\n")
            return ExitStatus.success
        }
        context.standardOutput.write("Peer \(peer): \(letters.count) dead letter\(letters.count == 1 ? "" : "s")\n")
        var table = Table([
            ("ID", .right), ("SEQ", .right), ("STREAM", .left), ("REASON", .left), ("DEAD-LETTERED", .left),
            ("ATTEMPT", .right), ("SIZE", .right), ("HEADERS", .left), ("PREVIEW", .left),
        ])
        for letter in letters {
            table.add([
                String(letter.id), String(letter.record.sequenceNumber), hex(letter.streamID), Self.reason(letter.reason),
                Units.iso8601(nanoseconds: letter.deadLetteredAt), String(letter.record.attempt),
                Units.bytes(Int64(letter.record.payload.count)), HeaderOutput.preview(letter.record.headers),
                Preview.of(letter.record.payload),
            ])
        }
        context.standardOutput.write(table.rendered())
        return ExitStatus.success
    }

    static func reason(_ reason: DeadLetterReason) -> String {
        let text = Preview.of(Array(reason.text.utf8), limit: 40)
        return text.isEmpty ? reason.kind.description : "\(reason.kind): \(text)"
    }

    static func json(_ letter: DeadLetter) -> JSON {
        .object([
            ("id", .unsigned(letter.id)),
            ("seq", .unsigned(letter.record.sequenceNumber)),
            ("stream", .string(hex(letter.streamID))),
            ("reason_kind", .string(letter.reason.kind.description)),
            ("reason", .string(letter.reason.text)),
            ("dead_lettered_at", .string(Units.iso8601(nanoseconds: letter.deadLetteredAt))),
            ("enqueued_at", .string(Units.iso8601(nanoseconds: letter.record.enqueuedAt))),
            ("expires_at", letter.record.expiresAt.map { .string(Units.iso8601(nanoseconds: $0)) } ?? .null),
            ("attempt", .unsigned(UInt64(letter.record.attempt))),
            ("size", .int(letter.record.payload.count)),
            HeaderOutput.member(letter.record.headers),
            JSON.payloadMember(letter.record.payload),
        ])
    }
}
