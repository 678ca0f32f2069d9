import Courier
import CourierExampleSupport
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One run of the consumer: prints and settles every delivered message until it has seen
/// enough (`--exit-after`) or is told to stop (SIGTERM, SIGINT).
struct ConsumerSession {
    let node: Node
    let exitAfter: Int?
    let rejectPattern: String?
    /// `--ack-delay-ms`: how long to wait before settling each message (a slow consumer).
    let ackDelay: Duration?
    private let program = "courier-consumer"

    init(node: Node, exitAfter: Int?, rejectPattern: String?, ackDelay: Duration? = nil) {
        self.node = node
        self.exitAfter = exitAfter
        self.rejectPattern = rejectPattern
        self.ackDelay = ackDelay
    }

    /// The most messages written with one write.
    static let batchLimit = 1_024

    /// Runs to the end and returns the exit code.
    func run() async -> Int32 {
        let signals = stopOnSignals()
        defer { signals.forEach { $0.cancel() } }
        // Validated by the command; compiled here so that no Regex crosses tasks.
        let pattern = rejectPattern.flatMap { try? Regex($0) }
        var seen = 0
        var status = ExitStatus.success
        var messages = node.messages.makeAsyncIterator()
        // --ack-delay-ms models a consumer slow on each message: one at a time then.
        let batchLimit = ackDelay.map { $0 > .zero } == true ? 1 : Self.batchLimit
        let reason = "payload matches --reject-matching \(rejectPattern ?? "")"  // one string for every rejection
        // A batch at a time: what has arrived is written with one write, and only then is
        // each of its messages settled (written before acknowledged, as for one message).
        while let batch = await messages.next(upTo: min(batchLimit, (exitAfter ?? .max) - seen)) {
            var output: [UInt8] = []
            output.reserveCapacity(batch.count * 160)
            var rejections: [Bool] = []
            rejections.reserveCapacity(batch.count)
            for message in batch {
                let rejected = pattern.map { matches(message.payload, $0) } ?? false
                JSONLine.render(message, rejected: rejected, into: &output)
                rejections.append(rejected)
            }
            // The lines are out of the process before their messages are settled.
            guard OutputStream.standardOutput.write(output) else {
                complain(program, "standard output is closed; stopping (unacknowledged messages will be redelivered)")
                status = ExitStatus.failure
                break
            }
            if let ackDelay, ackDelay > .zero {
                try? await Task.sleep(for: ackDelay)
            }
            for (message, rejected) in zip(batch, rejections) {
                if rejected {
                    message.reject(reason: reason)
                } else {
                    message.acknowledge()
                }
            }
            seen += batch.count
            if let exitAfter, seen >= exitAfter { break }
        }
        // Graceful: the acknowledgements reach the senders before the sockets close.
        await node.shutdown()
        return status
    }

    private func matches(_ payload: [UInt8], _ pattern: Regex<AnyRegexOutput>) -> Bool {
        let text = String(decoding: payload, as: UTF8.self)
        return (try? pattern.firstMatch(in: text)) != nil
    }

    /// SIGTERM and SIGINT start a graceful shutdown, which ends `node.messages`.
    private func stopOnSignals() -> [any DispatchSourceSignal] {
        [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            let node = self.node
            source.setEventHandler {
                Task { await node.shutdown() }
            }
            source.resume()
            return source
        }
    }
}

/// The consumer's output format: one JSON object per message.
enum JSONLine {
    static func render(_ message: IncomingMessage, rejected: Bool) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(message.payload.count + 128)
        render(message, rejected: rejected, into: &line)
        return line
    }

    /// Appends the message's line to `line` (no intermediate arrays: the consumer renders a
    /// batch into one buffer). No `reserveCapacity` here: reserving exactly a little more
    /// per line reallocates and copies the whole buffer every time.
    static func render(_ message: IncomingMessage, rejected: Bool, into line: inout [UInt8]) {
        line.append(contentsOf: #"{"from":"#.utf8)
        appendString(message.sender.utf8, to: &line)
        line.append(contentsOf: #","stream":""#.utf8)
        appendNumber(message.stream, radix: 16, to: &line)
        line.append(contentsOf: #"","seq":"#.utf8)
        appendNumber(message.sequence, radix: 10, to: &line)
        line.append(contentsOf: message.redelivered ? #","redelivered":true"#.utf8 : #","redelivered":false"#.utf8)
        line.append(contentsOf: #","attempt":"#.utf8)
        appendNumber(UInt64(message.attempt), radix: 10, to: &line)
        appendHeaders(message.headers, to: &line)
        if isUTF8(message.payload) {
            line.append(contentsOf: #","payload":"#.utf8)
            appendString(message.payload, to: &line)
        } else {
            line.append(contentsOf: #","payload_base64":""#.utf8)
            line += Base64.encode(message.payload)
            line.append(UInt8(ascii: "\""))
        }
        if rejected { line.append(contentsOf: #","rejected":true"#.utf8) }
        line.append(contentsOf: "}\n".utf8)
    }

    /// Appends `,"headers":{…}`: the message's headers as an object, name to value, in the
    /// message's order (`{}` when it has none, so that every line has the key).
    private static func appendHeaders(_ headers: MessageHeaders, to line: inout [UInt8]) {
        guard !headers.isEmpty else {
            line.append(contentsOf: #","headers":{}"#.utf8)
            return
        }
        line.append(contentsOf: #","headers":{"#.utf8)
        for (index, header) in headers.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            appendString(header.name.utf8, to: &line)
            line.append(UInt8(ascii: ":"))
            appendString(header.value.utf8, to: &line)
        }
        line.append(UInt8(ascii: "}"))
    }

    private static func isUTF8(_ bytes: [UInt8]) -> Bool {
        bytes.allSatisfy { $0 < 0x80 } || String(validating: bytes, as: UTF8.self) != nil
    }

    private static func appendNumber(_ value: UInt64, radix: UInt64, to line: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                let digit = UInt8(rest % radix)
                buffer[19 - count] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                count += 1
                rest /= radix
            } while rest > 0
            line.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// Appends `utf8` (valid UTF-8) as a JSON string literal.
    private static func appendString(_ utf8: some Collection<UInt8>, to line: inout [UInt8]) {
        line.append(UInt8(ascii: "\""))
        guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == 0x7F }) else {
            line.append(contentsOf: utf8)
            line.append(UInt8(ascii: "\""))
            return
        }
        let hex: StaticString = "0123456789abcdef"
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): line.append(UInt8(ascii: "\\")); line.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): line.append(UInt8(ascii: "\\")); line.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "\n"): line.append(UInt8(ascii: "\\")); line.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): line.append(UInt8(ascii: "\\")); line.append(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): line.append(UInt8(ascii: "\\")); line.append(UInt8(ascii: "t"))
            case 0..<0x20, 0x7F:
                line.append(contentsOf: #"\u00"#.utf8)
                hex.withUTF8Buffer { digits in
                    line.append(digits[Int(byte >> 4)])
                    line.append(digits[Int(byte & 0xF)])
                }
            default: line.append(byte)
            }
        }
        line.append(UInt8(ascii: "\""))
    }
}

/// Standard base64 (RFC 4648, with padding), for payloads that are not UTF-8.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = Int(bytes[index])
            let b1 = index + 1 < bytes.count ? Int(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? Int(bytes[index + 2]) : 0
            output.append(alphabet[b0 >> 2])
            output.append(alphabet[((b0 & 0x3) << 4) | (b1 >> 4)])
            output.append(index + 1 < bytes.count ? alphabet[((b1 & 0xF) << 2) | (b2 >> 6)] : UInt8(ascii: "="))
            output.append(index + 2 < bytes.count ? alphabet[b2 & 0x3F] : UInt8(ascii: "="))
            index += 3
        }
        return output
    }
}
