#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Encodes a value into a message payload: `JSONEncoder` is one, and any other encoder can be
/// made one by adding this method.
public protocol PayloadEncoder {
    /// The payload bytes for `value`.
    func encode<Value: Encodable>(_ value: Value) throws -> Data
}

/// Decodes a message payload into a value: `JSONDecoder` is one.
public protocol PayloadDecoder {
    /// The value that `data` encodes.
    func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value
}

extension JSONEncoder: PayloadEncoder {}
extension JSONDecoder: PayloadDecoder {}

extension Node {
    /// Sends any collection of bytes (an `ArraySlice`, a `ContiguousArray`, an
    /// `UnsafeRawBufferPointer`…), copied once into the spool record. Behaves as
    /// ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)``.
    @inlinable
    public func send(_ payload: some Collection<UInt8>, to peer: String, headers: MessageHeaders = [:],
                     timeToLive: Duration? = nil) async throws(CourierError) -> Receipt {
        try await send(Array(payload), to: peer, headers: headers, timeToLive: timeToLive)
    }

    /// Sends `data`'s bytes. Behaves as ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)``.
    public func send(_ data: Data, to peer: String, headers: MessageHeaders = [:], timeToLive: Duration? = nil) async throws(CourierError) -> Receipt {
        try await send(Array(data), to: peer, headers: headers, timeToLive: timeToLive)
    }

    /// Sends `text` as UTF-8 (the receiver reads it with ``IncomingMessage/string``).
    /// Behaves as ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)``.
    public func send(_ text: String, to peer: String, headers: MessageHeaders = [:], timeToLive: Duration? = nil) async throws(CourierError) -> Receipt {
        try await send(Array(text.utf8), to: peer, headers: headers, timeToLive: timeToLive)
    }

    /// Encodes `value` (JSON by default) and sends the bytes; the receiver reads it with
    /// ``IncomingMessage/decode(_:decoder:)``. Behaves as ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)``.
    ///
    /// ```swift
    /// struct Order: Codable { var id: Int; var amount: Decimal }
    /// let receipt = try await node.send(Order(id: 7, amount: 12.5), to: "ledger", encoder: JSONEncoder())
    /// ```
    ///
    /// - Parameters:
    ///   - value: what to send.
    ///   - peer: the receiving node's id.
    ///   - headers: metadata for the receiver; none by default.
    ///   - timeToLive: after this long undelivered, the message expires; `nil` uses
    ///     ``NodeConfiguration/defaultTimeToLive``.
    ///   - encoder: turns `value` into bytes. Pass the same kind of decoder to
    ///     ``IncomingMessage/decode(_:decoder:)`` on the receiving side.
    /// - Throws: ``CourierError/Code/encoding`` when `value` cannot be encoded (nothing is
    ///   stored), and what ``send(_:to:headers:timeToLive:)-([UInt8],_,_,_)`` throws.
    public func send(
        _ value: some Encodable, to peer: String, headers: MessageHeaders = [:], timeToLive: Duration? = nil, encoder: some PayloadEncoder
    ) async throws(CourierError) -> Receipt {
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(value))
        } catch {
            throw CourierError(.encoding, "cannot encode a \(type(of: value)) for \(peer): \(error); nothing was stored")
        }
        return try await send(bytes, to: peer, headers: headers, timeToLive: timeToLive)
    }
}

extension IncomingMessage {
    /// The payload as UTF-8 text, or nil when it is not valid UTF-8.
    public var string: String? {
        String(validating: payload, as: UTF8.self)
    }

    /// The payload as `Data` (a copy).
    public var data: Data {
        Data(payload)
    }

    /// Decodes the payload, as sent with ``Node/send(_:to:headers:timeToLive:encoder:)``.
    ///
    /// ```swift
    /// for await message in node.messages {
    ///     do {
    ///         let order = try message.decode(Order.self, decoder: JSONDecoder())
    ///         try await book(order)
    ///         message.acknowledge()
    ///     } catch {
    ///         message.reject(reason: "\(error)")
    ///     }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - type: the type to decode.
    ///   - decoder: the decoder matching the sender's encoder.
    /// - Throws: the decoder's error when the payload is not a `type`; the message is then
    ///   still yours to ``reject(reason:)`` (or acknowledge).
    public func decode<Value: Decodable>(_ type: Value.Type = Value.self, decoder: some PayloadDecoder) throws -> Value {
        try decoder.decode(type, from: Data(payload))
    }
}
