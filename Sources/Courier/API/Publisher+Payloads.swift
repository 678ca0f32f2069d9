#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension Publisher {
    /// Sends any collection of bytes, copied once. Behaves as ``send(_:)-([UInt8])``.
    @discardableResult
    public func send(_ payload: some Collection<UInt8>) async throws(CourierError) -> PendingReceipt {
        try await send(Array(payload))
    }

    /// Sends `data`'s bytes. Behaves as ``send(_:)-([UInt8])``.
    @discardableResult
    public func send(_ data: Data) async throws(CourierError) -> PendingReceipt {
        try await send(Array(data))
    }

    /// Sends `text` as UTF-8 (the receiver reads it with ``IncomingMessage/string``).
    /// Behaves as ``send(_:)-([UInt8])``.
    @discardableResult
    public func send(_ text: String) async throws(CourierError) -> PendingReceipt {
        try await send(Array(text.utf8))
    }

    /// Encodes `value` and sends the bytes; the receiver reads it with
    /// ``IncomingMessage/decode(_:decoder:)``. Behaves as ``send(_:)-([UInt8])``.
    ///
    /// - Throws: ``CourierError/Code/encoding`` when `value` cannot be encoded (nothing is
    ///   accepted, and the publisher goes on), and what ``send(_:)-([UInt8])`` throws.
    @discardableResult
    public func send(_ value: some Encodable, encoder: some PayloadEncoder) async throws(CourierError) -> PendingReceipt {
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(value))
        } catch {
            throw CourierError(.encoding, "cannot encode a \(type(of: value)) for \(peer): \(error); nothing was accepted")
        }
        return try await send(bytes)
    }
}
