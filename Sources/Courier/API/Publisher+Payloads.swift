#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension Publisher {
    /// Sends any collection of bytes, copied once. Behaves as ``send(_:headers:)-([UInt8],_)``.
    @discardableResult
    public func send(_ payload: some Collection<UInt8>, headers: MessageHeaders = [:]) async throws(CourierError) -> PendingReceipt {
        try await send(Array(payload), headers: headers)
    }

    /// Sends `data`'s bytes. Behaves as ``send(_:headers:)-([UInt8],_)``.
    @discardableResult
    public func send(_ data: Data, headers: MessageHeaders = [:]) async throws(CourierError) -> PendingReceipt {
        try await send(Array(data), headers: headers)
    }

    /// Sends `text` as UTF-8 (the receiver reads it with ``IncomingMessage/string``).
    /// Behaves as ``send(_:headers:)-([UInt8],_)``.
    @discardableResult
    public func send(_ text: String, headers: MessageHeaders = [:]) async throws(CourierError) -> PendingReceipt {
        try await send(Array(text.utf8), headers: headers)
    }

    /// Encodes `value` and sends the bytes; the receiver reads it with
    /// ``IncomingMessage/decode(_:decoder:)``. Behaves as ``send(_:headers:)-([UInt8],_)``.
    ///
    /// - Throws: ``CourierError/Code/encoding`` when `value` cannot be encoded (nothing is
    ///   accepted, and the publisher goes on), and what ``send(_:headers:)-([UInt8],_)`` throws.
    @discardableResult
    public func send(_ value: some Encodable, headers: MessageHeaders = [:], encoder: some PayloadEncoder) async throws(CourierError) -> PendingReceipt {
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(value))
        } catch {
            throw CourierError(.encoding, "cannot encode a \(type(of: value)) for \(peer): \(error); nothing was accepted")
        }
        return try await send(bytes, headers: headers)
    }
}
