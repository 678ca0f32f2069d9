import CZeroMQ

/// The ZeroMQ socket patterns this layer offers.
public enum SocketType: Sendable, Hashable, CustomStringConvertible {
    /// Exclusive pair; used for in-process signalling and socket monitors.
    case pair
    /// Request side of REQ/REP (strict send/receive alternation).
    case request
    /// Reply side of REQ/REP; the ZAP authentication handler is one.
    case reply
    /// Asynchronous client: load-balances outgoing messages, fair-queues incoming ones.
    case dealer
    /// Asynchronous server: prefixes each incoming message with the sender's routing id and
    /// sends each outgoing message to the peer named by its first frame.
    case router
    /// Publish side of PUB/SUB.
    case publish
    /// Subscribe side of PUB/SUB.
    case subscribe
    /// Push side of a pipeline.
    case push
    /// Pull side of a pipeline.
    case pull

    var rawValue: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .request: ZMQ_REQ
        case .reply: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .publish: ZMQ_PUB
        case .subscribe: ZMQ_SUB
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        }
    }

    /// The pattern's name, as libzmq spells it (`DEALER`, `ROUTER`, …).
    public var description: String {
        switch self {
        case .pair: "PAIR"
        case .request: "REQ"
        case .reply: "REP"
        case .dealer: "DEALER"
        case .router: "ROUTER"
        case .publish: "PUB"
        case .subscribe: "SUB"
        case .push: "PUSH"
        case .pull: "PULL"
        }
    }
}
