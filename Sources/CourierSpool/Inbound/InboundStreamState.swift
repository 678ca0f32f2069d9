/// The receiver's deduplication record for one (sender, stream) (SPEC §2, guarantees 3–4).
package struct InboundStreamState: Sendable, Hashable {
    /// The sending node's id.
    package var sender: String
    /// The sender's stream id (its incarnation).
    package var streamID: UInt64
    /// Every sequence number up to and including this one has been processed.
    package var processedUpTo: UInt64
    /// Processed sequence numbers above ``processedUpTo`` (acknowledged out of order).
    package var processedAbove: Set<UInt64>
    /// Every sequence number up to this one may have been handed to the application.
    package var reservedUpTo: UInt64
    /// The reservation ceiling: never below ``reservedUpTo``; under group commit, once a
    /// snapshot holding it is synced, the receiver may hand out numbers up to it with only
    /// an unsynced write of ``reservedUpTo`` first. After an operating-system crash it
    /// replaces ``reservedUpTo`` when higher (see ``InboundConfiguration/reservationAhead``).
    package var reservationCeiling: UInt64
    /// The last change, in nanoseconds since the Unix epoch.
    package var lastActivity: Int64

    /// Creates a state.
    package init(sender: String, streamID: UInt64, processedUpTo: UInt64 = 0, processedAbove: Set<UInt64> = [], reservedUpTo: UInt64 = 0, reservationCeiling: UInt64 = 0, lastActivity: Int64 = 0) {
        self.sender = sender
        self.streamID = streamID
        self.processedUpTo = processedUpTo
        self.processedAbove = processedAbove
        self.reservedUpTo = reservedUpTo
        self.reservationCeiling = max(reservationCeiling, reservedUpTo)
        self.lastActivity = lastActivity
    }

    /// What a receiver should do with an incoming sequence number.
    package enum Disposition: Sendable, Hashable {
        /// Already processed: drop it (and acknowledge again).
        case duplicate
        /// Not processed, but may have been handed out before a restart: hand it out
        /// marked `redelivered`.
        case redelivery
        /// Never handed out.
        case new
    }

    /// Whether `sequenceNumber` was processed.
    package func isProcessed(_ sequenceNumber: UInt64) -> Bool {
        sequenceNumber <= processedUpTo || processedAbove.contains(sequenceNumber)
    }

    /// What to do with `sequenceNumber`.
    package func disposition(of sequenceNumber: UInt64) -> Disposition {
        if isProcessed(sequenceNumber) { return .duplicate }
        return sequenceNumber <= reservedUpTo ? .redelivery : .new
    }

    /// Applies "processed `sequenceNumber`"; returns false if the out-of-order set would
    /// exceed `limit`.
    mutating func markProcessed(_ sequenceNumber: UInt64, limit: Int) -> Bool {
        if isProcessed(sequenceNumber) { return true }
        if sequenceNumber == processedUpTo + 1 {
            processedUpTo = sequenceNumber
            while processedAbove.remove(processedUpTo + 1) != nil { processedUpTo += 1 }
        } else {
            guard processedAbove.count < limit else { return false }
            processedAbove.insert(sequenceNumber)
        }
        reservedUpTo = max(reservedUpTo, processedUpTo)
        return true
    }

    /// The journal body (see docs/SPOOL-FORMAT.md, "inbound.journal"): `u8 sender length,
    /// sender (UTF-8), u64 stream id, u64 processed-up-to, u64 reserved-up-to, u32 count,
    /// count × u64 processed numbers above the mark (ascending), u64 reservation ceiling,
    /// 16 bytes boot id` (the last two since format 2; zeros: no boot id known).
    func encodedBody(bootID: [UInt8]?) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + sender.utf8.count + processedAbove.count * 8)
        let name = Array(sender.utf8.prefix(255))
        writer.u8(UInt8(name.count))
        writer.append(name)
        writer.u64(streamID)
        writer.u64(processedUpTo)
        writer.u64(reservedUpTo)
        writer.u32(UInt32(processedAbove.count))
        for value in processedAbove.sorted() { writer.u64(value) }
        writer.u64(max(reservationCeiling, reservedUpTo))
        if let bootID, bootID.count == Self.bootIDSize {
            writer.append(bootID)
        } else {
            writer.append([UInt8](repeating: 0, count: Self.bootIDSize))
        }
        return writer.bytes
    }

    static let bootIDSize = 16

    static func decode(body: [UInt8], lastActivity: Int64) -> InboundStreamState? {
        decodeSnapshot(body: body, lastActivity: lastActivity)?.state
    }

    /// The state and the boot id of the node that wrote it (`nil`: a format-1 snapshot, or
    /// none known then).
    static func decodeSnapshot(body: [UInt8], lastActivity: Int64) -> (state: InboundStreamState, bootID: [UInt8]?)? {
        body.withUnsafeBytes { raw -> (state: InboundStreamState, bootID: [UInt8]?)? in
            guard raw.count >= 1 else { return nil }
            let nameLength = Int(raw[0])
            let fixed = 1 + nameLength + 28
            guard nameLength > 0, raw.count >= fixed else { return nil }
            let count = Int(raw.u32(at: 1 + nameLength + 24))
            guard count <= (raw.count - fixed) / 8 else { return nil }
            let numbersEnd = fixed + count * 8
            let trailer = raw.count - numbersEnd
            guard trailer == 0 || trailer == 8 + bootIDSize else { return nil }
            guard let sender = String(validating: raw[1..<(1 + nameLength)], as: UTF8.self) else { return nil }
            var above = Set<UInt64>(minimumCapacity: count)
            for i in 0..<count { above.insert(raw.u64(at: fixed + i * 8)) }
            let reserved = raw.u64(at: 1 + nameLength + 16)
            var ceiling = reserved
            var bootID: [UInt8]?
            if trailer > 0 {
                ceiling = max(reserved, raw.u64(at: numbersEnd))
                let id = Array(raw[(numbersEnd + 8)..<raw.count])
                if id.contains(where: { $0 != 0 }) { bootID = id }
            }
            let state = InboundStreamState(
                sender: sender,
                streamID: raw.u64(at: 1 + nameLength),
                processedUpTo: raw.u64(at: 1 + nameLength + 8),
                processedAbove: above,
                reservedUpTo: reserved,
                reservationCeiling: ceiling,
                lastActivity: lastActivity
            )
            return (state, bootID)
        }
    }
}

/// Identifies an inbound stream.
package struct InboundStreamKey: Sendable, Hashable {
    /// The sending node's id.
    package var sender: String
    /// The sender's stream id.
    package var streamID: UInt64

    /// Creates a key.
    package init(sender: String, streamID: UInt64) {
        self.sender = sender
        self.streamID = streamID
    }
}
