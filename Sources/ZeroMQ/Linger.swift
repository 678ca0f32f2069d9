/// What closing a socket does with messages still queued for sending (`ZMQ_LINGER`).
public enum Linger: Sendable, Hashable {
    /// Drop them at once. The default of every ``Socket`` this layer creates.
    case discard
    /// Keep trying for up to this long, then drop them.
    case upTo(Duration)
    /// Keep trying until they are sent; closing the context waits for it. Rarely wise.
    case forever

    var milliseconds: Int32 {
        switch self {
        case .discard: 0
        case .forever: -1
        case .upTo(let duration): Int32(clamping: max(0, duration.wholeMilliseconds))
        }
    }

    init(milliseconds: Int32) {
        switch milliseconds {
        case ..<0: self = .forever
        case 0: self = .discard
        default: self = .upTo(.milliseconds(milliseconds))
        }
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
