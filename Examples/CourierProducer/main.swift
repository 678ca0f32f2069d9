// courier-producer: sends messages reliably to one Courier peer (SPEC §5).
import ArgumentParser
import Courier
import CourierExampleSupport
import Logging

struct Producer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "courier-producer",
        abstract: "Send messages reliably to one Courier peer.",
        discussion: """
            Every message is stored in the spool under --data-dir before it counts as sent; \
            from then on it survives crashes of either side and is delivered once, in order, \
            whenever the peer can be reached. By default each line of standard input is one \
            message, sent as soon as it is read. Without --wait the program exits once every \
            message is spooled; delivery goes on the next time a node runs on that data \
            directory (this program with --wait, for example).

            With --wait the summary counts the real outcome of every message not yet \
            reported by an earlier --wait run (rejections by the peer included), not only \
            this run's; once it is printed they count as reported.

            Exit status: 0 on success (with --wait: every message was processed), 1 on a \
            failure or when a message was rejected, expired or dead-lettered, 2 on a bad \
            command line.

            Examples:
              # each line of standard input is a message:
              courier-producer --id P --data-dir /tmp/p --peer C=tcp://127.0.0.1:7001
              # 1000 generated 100-byte messages, 200 a second, echoed once spooled:
              courier-producer --id P --data-dir /tmp/p --peer C=tcp://127.0.0.1:7001 \\
                  --count 1000 --size 100 --rate 200 --print-spooled
              # every message with two headers:
              courier-producer --id P --data-dir /tmp/p --peer C=tcp://127.0.0.1:7001 \\
                  --header content-type=text/plain --header trace=abc
              # deliver what earlier runs spooled and report the outcomes:
              courier-producer --id P --data-dir /tmp/p --peer C=tcp://127.0.0.1:7001 \\
                  --wait < /dev/null
            """)

    @Option(help: ArgumentHelp(
        "This node's id (1–255 bytes of UTF-8); keep it the same on every run with the same data directory. Example: --id P",
        valueName: "ID"))
    var id: String

    @Option(name: .customLong("data-dir"), help: ArgumentHelp(
        "The directory holding this node's spool (created if missing; one process at a time). Example: --data-dir /tmp/p",
        valueName: "DIR"))
    var dataDirectory: String

    @Option(help: ArgumentHelp(
        "The peer to send to: its node id and the endpoint it listens on (tcp://HOST:PORT or ipc://PATH). Example: --peer C=tcp://127.0.0.1:7001",
        valueName: "NAME=ENDPOINT"))
    var peer: String

    @Option(help: ArgumentHelp(
        "Generate N messages instead of reading standard input; the payload of message n (from 1) is ID-n. Example: --count 1000",
        valueName: "N"))
    var count: Int?

    @Option(help: ArgumentHelp(
        "With --count: pad each generated payload with '.' to BYTES (payloads longer than BYTES are not cut). Example: --size 100",
        valueName: "BYTES"))
    var size: Int?

    @Option(help: ArgumentHelp(
        "Send at most this many messages per second (generated or read). Example: --rate 500",
        valueName: "PER_SECOND"))
    var rate: Double?

    @Option(name: .customLong("header"), help: ArgumentHelp(
        "A header every message of this run carries, as NAME=VALUE (split at the first '='; the name not empty; repeat for several, each name once; at most \(MessageHeaders.maxCount)). The receiver gets them in this order (courier-consumer prints them under \"headers\"). Example: --header content-type=text/plain",
        valueName: "NAME=VALUE"))
    var header: [String] = []

    @Flag(name: .customLong("print-spooled"), help: ArgumentHelp(
        "Write each message's payload to standard output, one line each, once send has returned for it (the message is then durable)."))
    var printSpooled = false

    @Flag(help: ArgumentHelp(
        "After sending, wait until the peer's spool holds nothing pending (messages from earlier runs included), then print a summary of outcomes on standard error: those of every message not yet reported by an earlier --wait run, this run's included."))
    var wait = false

    @Option(help: ArgumentHelp(
        "Time to live of each message sent in this run: undelivered after this long, it expires. Example: --ttl 30",
        valueName: "SECONDS"))
    var ttl: String?

    @Option(help: ArgumentHelp(
        "When a message counts as stored: group (fsync, shared by concurrent sends), interval (fsync every 100 ms), none (page cache: survives a crash of the process, not of the machine). Example: --durability none",
        valueName: "group|interval|none"))
    var durability: DurabilityChoice = .group

    @Option(help: ArgumentHelp(
        "Most messages waiting to be stored at once. Sending does not wait for each sync: what is read or generated while a spool write syncs goes in the next write, so one write holds at most N messages. Example: --batch 64",
        valueName: "N"))
    var batch = 4_096

    @Option(name: .customLong("max-spool-messages"), help: ArgumentHelp(
        "Most messages pending for the peer in the spool; at the limit, send waits or fails (see --when-spool-full). Default: 10000000. Example: --max-spool-messages 100000",
        valueName: "N"))
    var maxSpoolMessages: Int?

    @Option(name: .customLong("max-spool-bytes"), help: ArgumentHelp(
        "Most payload bytes pending for the peer in the spool. Default: 1073741824 (1 GiB). Example: --max-spool-bytes 10000000",
        valueName: "BYTES"))
    var maxSpoolBytes: Int64?

    @Option(name: .customLong("when-spool-full"), help: ArgumentHelp(
        "What send does when the spool is at its limit: wait (until the peer acknowledges enough to make room) or fail (exit 1 at once, saying so). Example: --when-spool-full fail",
        valueName: "wait|fail"))
    var whenSpoolFull: WhenFullChoice = .wait

    @OptionGroup(title: "Security")
    var security: SecurityOptions

    @Flag(help: "Log the node's progress (info level) on standard error.")
    var verbose = false

    /// The peer's id and endpoint, from `--peer`.
    var target: (id: String, endpoint: String) {
        let parts = peer.split(separator: "=", maxSplits: 1)
        return (String(parts[0]), String(parts[1]))
    }

    func validate() throws {
        guard (1...255).contains(id.utf8.count), id.utf8.first != 0 else {
            throw ValidationError("--id must be 1 to 255 bytes of UTF-8, such as --id P")
        }
        let parts = peer.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 255 else {
            throw ValidationError("--peer must be NAME=ENDPOINT, such as --peer C=tcp://127.0.0.1:7001")
        }
        if let problem = Endpoint.problem(with: String(parts[1]), listening: false) {
            throw ValidationError("--peer: \(problem)")
        }
        if let count, count < 0 { throw ValidationError("--count must be 0 or more") }
        if let size {
            guard count != nil else { throw ValidationError("--size goes with --count (it pads generated messages)") }
            guard (0...(1 << 20)).contains(size) else { throw ValidationError("--size must be from 0 to 1048576 bytes") }
        }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number of messages per second") }
        _ = try HeaderArguments.parse(header)
        if let ttl, duration(seconds: ttl) == nil { throw ValidationError("--ttl must be a number of seconds, such as --ttl 30") }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be from 1 to 100000") }
        if let maxSpoolMessages, maxSpoolMessages < 1 { throw ValidationError("--max-spool-messages must be 1 or more") }
        if let maxSpoolBytes, maxSpoolBytes < 1 { throw ValidationError("--max-spool-bytes must be 1 or more") }
    }

    func run() async throws {
        let logLevel = bootstrapLogging(verbose: verbose)
        var configuration = NodeConfiguration(id: id, dataDirectory: dataDirectory)
        configuration.logger.logLevel = logLevel
        configuration.peers = [PeerConfiguration(id: target.id, endpoints: [target.endpoint])]
        configuration.durability = durability.policy
        if let maxSpoolMessages { configuration.maxSpoolMessages = maxSpoolMessages }
        if let maxSpoolBytes { configuration.maxSpoolBytes = maxSpoolBytes }
        configuration.whenSpoolFull = whenSpoolFull.behavior
        do { configuration.security = try security.configuration() } catch {
            complain(Self.configuration.commandName!, error.message)
            throw ExitCode(ExitStatus.usage)
        }
        let node: Node
        switch await startNode(configuration, program: Self.configuration.commandName!, detailed: verbose) {
        case .success(let started): node = started
        case .failure(let failure): throw ExitCode(failure.status)
        }
        // Validated with the command line (validate()), so this does not throw.
        let session = ProducerSession(node: node, options: self, headers: try HeaderArguments.parse(header))
        throw ExitCode(await session.run())
    }
}

/// The `--durability` choices.
enum DurabilityChoice: String, ExpressibleByArgument, CaseIterable {
    case group, interval, none

    var policy: Durability {
        switch self {
        case .group: .groupCommit
        case .interval: .interval(.milliseconds(100))
        case .none: .none
        }
    }
}

await runProgram(Producer.self, program: "courier-producer")

/// The `--when-spool-full` choices.
enum WhenFullChoice: String, ExpressibleByArgument, CaseIterable {
    case wait, fail

    var behavior: WhenSpoolFull { self == .wait ? .wait : .fail }
}
