import CourierSpool

/// A message's headers: a small list of named text values sent with the payload, such as a
/// content type, a correlation id or a trace context (`traceparent`). They are stored in the
/// spool with the message, carried on the wire (protocol version 2) and given to the receiver
/// as ``IncomingMessage/headers``.
///
/// ```swift
/// let receipt = try await node.send(order, to: "ledger",
///                                   headers: ["content-type": "application/json", "correlation-id": id])
/// // on the receiving node
/// if message.headers["content-type"] == "application/json" { … }
/// ```
///
/// Names are unique and compared byte for byte (`Content-Type` and `content-type` are two
/// names); setting a name that is present replaces its value in place, so the order is the
/// order names were first set. Limits, checked by `send`
/// (``CourierError/Code/invalidHeaders``): at most ``maxCount`` headers, names of 1 to
/// ``maxNameBytes`` bytes of UTF-8, values of at most ``maxValueBytes``, and
/// ``maxTotalBytes`` for all of them together (each header counts its name, its value and 3
/// bytes of lengths, plus 1 byte for the count).
///
/// A peer that speaks only protocol version 1 (a release from before headers) cannot receive
/// them: a message with headers for such a peer is dead-lettered with a reason that says so,
/// and can be requeued once the peer is upgraded. Messages without headers reach it as before.
public struct MessageHeaders: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// One header.
    public struct Header: Sendable, Hashable {
        /// The header's name.
        public var name: String
        /// The header's value.
        public var value: String
    }

    /// At most this many headers per message.
    public static let maxCount = HeaderBlock.maxCount
    /// The longest name, in bytes of UTF-8.
    public static let maxNameBytes = HeaderBlock.maxNameBytes
    /// The longest value, in bytes of UTF-8.
    public static let maxValueBytes = HeaderBlock.maxValueBytes
    /// The most bytes all headers of a message take together.
    public static let maxTotalBytes = HeaderBlock.maxBytes

    private var entries: [Header] = []

    /// No headers.
    public init() {}

    /// The headers in `pairs`, in order; a name given twice keeps the later value.
    public init(_ pairs: some Sequence<(String, String)>) {
        for (name, value) in pairs { self[name] = value }
    }

    /// The headers of a dictionary literal, in the literal's order; a name given twice keeps
    /// the later value.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The value of the header `name`, or nil. Setting a value replaces the header's value
    /// (or adds the header at the end); setting nil removes it.
    public subscript(name: String) -> String? {
        get { entries.first { $0.name == name }?.value }
        set {
            let index = entries.firstIndex { $0.name == name }
            switch (index, newValue) {
            case (let index?, let value?): entries[index].value = value
            case (let index?, nil): entries.remove(at: index)
            case (nil, let value?): entries.append(Header(name: name, value: value))
            case (nil, nil): break
            }
        }
    }

    /// How many headers there are.
    public var count: Int { entries.count }
    /// Whether there are none.
    public var isEmpty: Bool { entries.isEmpty }
    /// The names, in order.
    public var names: [String] { entries.map(\.name) }

    /// The headers, in order.
    public func makeIterator() -> IndexingIterator<[Header]> { entries.makeIterator() }

    /// `name: value` pairs, as a dictionary literal would show them.
    public var description: String {
        entries.isEmpty ? "[:]" : "[" + entries.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]"
    }

    /// The stored and transmitted form, or ``CourierError/Code/invalidHeaders`` saying which
    /// limit the headers break.
    func encoded() throws(CourierError) -> [UInt8] {
        guard !entries.isEmpty else { return [] }
        let pairs = entries.map { (name: $0.name, value: $0.value) }
        if let problem = HeaderBlock.problem(with: pairs) {
            throw CourierError(.invalidHeaders, "the message's headers cannot be sent: \(problem); nothing was stored")
        }
        return HeaderBlock.encode(pairs)
    }

    /// The headers of a block the wire decoder or the spool has validated (an empty block:
    /// none; one that does not validate gives none, and cannot occur).
    init(block: some Collection<UInt8>) {
        guard !block.isEmpty, let pairs = HeaderBlock.decode(block) else { return }
        entries = pairs.map { Header(name: $0.name, value: $0.value) }
    }
}
