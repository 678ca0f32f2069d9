import SystemPackage

/// An open segment file. Readers take a reference under the log's lock and read outside
/// it; the descriptor closes when the last reference goes, so a segment deleted while a
/// read is in flight is still read safely (the file lives on until then).
final class Segment: Sendable {
    let baseSequence: UInt64
    let path: FilePath
    let fd: FileDescriptor

    init(baseSequence: UInt64, path: FilePath, fd: FileDescriptor) {
        self.baseSequence = baseSequence
        self.path = path
        self.fd = fd
    }

    deinit { try? fd.close() }

    static let prefix = "seg-"
    static let suffix = ".log"

    /// `seg-<base sequence, 20 decimal digits>.log`, so names sort in sequence order.
    static func fileName(baseSequence: UInt64) -> String {
        let digits = String(baseSequence)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The base sequence number in a segment file name, or `nil` if it is not one.
    static func baseSequence(fromFileName name: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }
}

/// The in-memory index of one segment: where each record starts. Four bytes per record.
struct SegmentIndex {
    let segment: Segment
    /// Byte offset of each record in the file; record `i` has sequence `base + i`.
    var offsets: [UInt32]
    /// The end of the last good record (the next append goes here).
    var end: Int64

    var baseSequence: UInt64 { segment.baseSequence }
    var count: Int { offsets.count }
    /// The last sequence number held, or `base - 1` when empty.
    var lastSequence: UInt64 { segment.baseSequence &+ UInt64(offsets.count) &- 1 }

    func contains(_ sequence: UInt64) -> Bool {
        sequence >= baseSequence && sequence - baseSequence < UInt64(offsets.count)
    }

    func offset(of sequence: UInt64) -> Int64 { Int64(offsets[Int(sequence - baseSequence)]) }

    /// The end offset of the record `sequence`.
    func endOffset(of sequence: UInt64) -> Int64 {
        let index = Int(sequence - baseSequence) + 1
        return index < offsets.count ? Int64(offsets[index]) : end
    }

    /// Bytes taken by records `from...to` (both within this segment).
    func bytes(from: UInt64, to: UInt64) -> Int64 {
        endOffset(of: to) - offset(of: from)
    }
}
