@testable import Courier

// Tests build frames by their fields; the version they are written in follows from those
// fields (the node itself always names the version of the stream it writes for).
extension WireEncoder {
    /// `frame` in version 2 when it has a field only version 2 carries (a HELLO's nonce, a
    /// WELCOME's answer, a record's headers), else in version 1.
    static func encode(_ frame: WireFrame) -> [UInt8] {
        encode(frame, version: frame.impliedVersion)
    }

    /// A data frame in version 1, as tests built them before version 2.
    static func data(stream: UInt64) -> WireEncoder {
        data(stream: stream, version: 1)
    }

    mutating func appendRecord(sequence: UInt64, attempt: UInt32, isTombstone: Bool, expiry: Int64, payload: some Collection<UInt8>) {
        appendRecord(sequence: sequence, attempt: attempt, isTombstone: isTombstone, expiry: expiry, headers: EmptyCollection(), payload: payload)
    }
}

extension WireFrame {
    var impliedVersion: UInt8 {
        switch self {
        case .hello(let hello): hello.nonce == nil ? 1 : 2
        case .welcome(let welcome): welcome.answer == nil ? 1 : 2
        case .data(let batch): batch.records.contains { !$0.headers.isEmpty } ? 2 : 1
        case .ack, .outcomes, .versions: 1
        }
    }
}
