// courier-consumer: receives Courier messages and prints each as a JSON line (SPEC §5).
import ArgumentParser
import Courier
import CourierExampleSupport
import Logging

struct Consumer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "courier-consumer",
        abstract: "Receive Courier messages and write each one to standard output as a JSON line.",
        discussion: """
            Each delivered message becomes one line of JSON with the keys from (the sender's \
            id), stream (the sender's stream id, hexadecimal), seq, redelivered, attempt, \
            headers (an object of the message's headers, name to value, in the sender's \
            order; {} when it has none) and payload (or payload_base64 when the payload is \
            not UTF-8). The line is written and flushed before the message is acknowledged \
            (messages that arrived together are written with one write, then acknowledged), \
            so a message is never acknowledged without having been printed; after a crash it \
            may be printed again, then with "redelivered": true. SIGTERM or SIGINT stop the \
            program gracefully (exit 0).

            Exit status: 0 on success, 1 on a failure (such as a data directory held by \
            another process), 2 on a bad command line.

            Examples:
              courier-consumer --id C --data-dir /tmp/c --listen tcp://127.0.0.1:7001
              # stop after 100 messages:
              courier-consumer --id C --data-dir /tmp/c --listen tcp://127.0.0.1:7001 \\
                  --exit-after 100
              # refuse payloads that start with "bad" (the sender sees "rejected"):
              courier-consumer --id C --data-dir /tmp/c --listen tcp://127.0.0.1:7001 \\
                  --reject-matching '^bad'
            """)

    @Option(help: ArgumentHelp(
        "This node's id (1–255 bytes of UTF-8), the name producers give in --peer NAME=ENDPOINT. Example: --id C",
        valueName: "ID"))
    var id: String

    @Option(name: .customLong("data-dir"), help: ArgumentHelp(
        "The directory holding this node's deduplication state (created if missing; one process at a time). Example: --data-dir /tmp/c",
        valueName: "DIR"))
    var dataDirectory: String

    @Option(help: ArgumentHelp(
        "Where to listen: tcp://HOST:PORT (HOST may be * for every interface) or ipc://PATH; repeat for several. Example: --listen tcp://127.0.0.1:7001",
        valueName: "ENDPOINT"))
    var listen: [String]

    @Option(name: .customLong("exit-after"), help: ArgumentHelp(
        "Exit (0) after N messages, once they are acknowledged and the node has shut down gracefully. Example: --exit-after 100",
        valueName: "N"))
    var exitAfter: Int?

    @Option(name: .customLong("reject-matching"), help: ArgumentHelp(
        "Reject every message whose payload matches this regular expression (it is still printed, with \"rejected\": true); the sender sees the outcome rejected. Example: --reject-matching '^bad'",
        valueName: "REGEX"))
    var rejectMatching: String?

    @Option(name: .customLong("ack-delay-ms"), help: ArgumentHelp(
        "Wait this many milliseconds after printing each message before settling it: a slow consumer, for fault-injection tests (tools/chaos). Example: --ack-delay-ms 20",
        valueName: "N"))
    var ackDelayMs: Int?

    @OptionGroup(title: "Security")
    var security: SecurityOptions

    @Flag(help: "Log the node's progress (info level) on standard error.")
    var verbose = false

    func validate() throws {
        guard (1...255).contains(id.utf8.count), id.utf8.first != 0 else {
            throw ValidationError("--id must be 1 to 255 bytes of UTF-8, such as --id C")
        }
        guard !listen.isEmpty else {
            throw ValidationError("--listen ENDPOINT is required, such as --listen tcp://127.0.0.1:7001")
        }
        for endpoint in listen {
            if let problem = Endpoint.problem(with: endpoint, listening: true) {
                throw ValidationError("--listen: \(problem)")
            }
        }
        if let exitAfter, exitAfter < 1 { throw ValidationError("--exit-after must be 1 or more") }
        if let ackDelayMs, !(0...60_000).contains(ackDelayMs) {
            throw ValidationError("--ack-delay-ms must be from 0 to 60000")
        }
        if let rejectMatching {
            do {
                _ = try Regex(rejectMatching)
            } catch {
                throw ValidationError("--reject-matching: \(rejectMatching) is not a valid regular expression")
            }
        }
    }

    func run() async throws {
        let logLevel = bootstrapLogging(verbose: verbose)
        var configuration = NodeConfiguration(id: id, dataDirectory: dataDirectory)
        configuration.logger.logLevel = logLevel
        configuration.listen = listen
        do { configuration.security = try security.configuration() } catch {
            complain(Self.configuration.commandName!, error.message)
            throw ExitCode(ExitStatus.usage)
        }
        let node: Node
        switch await startNode(configuration, program: Self.configuration.commandName!, detailed: verbose) {
        case .success(let started): node = started
        case .failure(let failure): throw ExitCode(failure.status)
        }
        configuration.logger.info("listening", metadata: ["endpoints": "\(node.boundEndpoints)"])
        let session = ConsumerSession(node: node, exitAfter: exitAfter, rejectPattern: rejectMatching,
                                      ackDelay: ackDelayMs.map { .milliseconds($0) })
        throw ExitCode(await session.run())
    }
}

await runProgram(Consumer.self, program: "courier-consumer")
