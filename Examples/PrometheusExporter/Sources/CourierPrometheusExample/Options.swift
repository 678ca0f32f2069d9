import Courier

/// The command line, parsed by hand: `--flag value` or `--flag=value`.
struct Options: Sendable {
    var id = ""
    var dataDirectory = ""
    var listen: [String] = []
    var peers: [PeerConfiguration] = []
    var httpHost = "127.0.0.1"
    var httpPort = 9464
    var send: Int?
    var exitAfter: Duration?
    var verbose = false

    static let usage = """
        usage: courier-prometheus-example --id ID --data-dir DIR [--listen ENDPOINT]...
                                          [--peer NAME=ENDPOINT]... [--http-host HOST] [--http-port PORT]
                                          [--send N] [--exit-after-seconds S] [--verbose]

        Runs a Courier node and serves its metrics (swift-metrics through swift-prometheus) on
        http://HOST:PORT/metrics, both in one ServiceGroup; SIGTERM or SIGINT stops both gracefully.
        Every message received is acknowledged.

          --id ID                 this node's id
          --data-dir DIR          the node's data directory (spool and deduplication state)
          --listen ENDPOINT       receive on ENDPOINT (tcp://HOST:PORT; port 0 picks a free one); repeatable
          --peer NAME=ENDPOINT    a peer to send to; repeatable
          --http-host HOST        address the metrics server binds (default 127.0.0.1)
          --http-port PORT        port of the metrics server (default 9464; 0 picks a free one)
          --send N                send N messages to the peer (exactly one --peer), then report their outcomes
          --exit-after-seconds S  shut down gracefully after S seconds
          --verbose               log at info level (default: warnings and errors only)

        Standard output carries one line per fact, flushed at once:
          courier: ENDPOINT                      each endpoint the node listens on (ports resolved)
          metrics: http://HOST:PORT/metrics      once the metrics server listens
          sent: N to PEER                        with --send, once the N messages are stored
          outcomes: processed=P rejected=R expired=E dead-lettered=D
                                                 with --send, once every outcome is known
        Logs go to standard error. Exit codes: 0 after a graceful shutdown, 1 on a failure,
        2 for a bad command line.
        """

    /// Parses `arguments` (without the program name). Throws ``UsageError``; returns nil for
    /// `--help`.
    static func parse(_ arguments: [String]) throws(UsageError) -> Options? {
        var options = Options()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            var flag = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                flag = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            func value() throws(UsageError) -> String {
                if let inlineValue { return inlineValue }
                guard let next = remaining.popFirst() else { throw UsageError("\(flag) needs a value") }
                return next
            }
            switch flag {
            case "--help", "-h":
                return nil
            case "--id":
                options.id = try value()
            case "--data-dir":
                options.dataDirectory = try value()
            case "--listen":
                options.listen.append(try value())
            case "--peer":
                let text = try value()
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex,
                      text.index(after: equals) != text.endIndex
                else { throw UsageError("--peer takes NAME=ENDPOINT, not \"\(text)\"") }
                options.peers.append(PeerConfiguration(
                    id: String(text[..<equals]), endpoints: [String(text[text.index(after: equals)...])]))
            case "--http-host":
                options.httpHost = try value()
            case "--http-port":
                let text = try value()
                guard let port = Int(text), (0...65535).contains(port) else {
                    throw UsageError("--http-port takes a port from 0 to 65535, not \"\(text)\"")
                }
                options.httpPort = port
            case "--send":
                let text = try value()
                guard let count = Int(text), count >= 0 else {
                    throw UsageError("--send takes a number of messages, not \"\(text)\"")
                }
                options.send = count
            case "--exit-after-seconds":
                let text = try value()
                guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
                    throw UsageError("--exit-after-seconds takes a number of seconds, not \"\(text)\"")
                }
                options.exitAfter = .milliseconds(Int64((seconds * 1000).rounded()))
            case "--verbose":
                guard inlineValue == nil else { throw UsageError("--verbose takes no value") }
                options.verbose = true
            default:
                throw UsageError("unknown argument \"\(argument)\"")
            }
        }
        guard !options.id.isEmpty else { throw UsageError("--id is required") }
        guard !options.dataDirectory.isEmpty else { throw UsageError("--data-dir is required") }
        if options.send != nil && options.peers.count != 1 {
            throw UsageError("--send needs exactly one --peer (got \(options.peers.count))")
        }
        return options
    }
}

/// A bad command line: one line on standard error, exit code 2.
struct UsageError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
