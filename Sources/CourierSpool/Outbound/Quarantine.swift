import SystemPackage

/// Names of quarantined byte ranges, and whether one was already set aside.
///
/// Damaged bytes in the middle of a segment are copied to
/// `quarantine/<segment>.at-<offset>.quarantined` and left where they are: the in-memory
/// index skips them. The next open finds the same damage again; when the quarantine file
/// already holds exactly those bytes, the range was reported before and is only skipped.
enum Quarantine {
    static let directoryName = "quarantine"

    /// `quarantine/` beside `file`.
    static func directory(for file: FilePath) -> FilePath {
        var directory = file
        directory.removeLastComponent()
        return directory.appending(directoryName)
    }

    /// `quarantine/<file>.at-<offset>.quarantined` beside `file`.
    static func path(for file: FilePath, offset: Int64) -> FilePath {
        let name = file.lastComponent?.string ?? "segment"
        return directory(for: file).appending("\(name).at-\(offset).quarantined")
    }

    /// Whether `target` exists and holds exactly `bytes`. Any read error counts as no.
    static func holds(_ target: FilePath, exactly bytes: ArraySlice<UInt8>) -> Bool {
        guard let copy = try? FileOps.openForReading(target) else { return false }
        defer { try? copy.close() }
        guard let size = try? copy.fileSize(), size == Int64(bytes.count),
              let kept = try? copy.readBytes(at: 0, count: bytes.count) else { return false }
        return kept.elementsEqual(bytes)
    }

    /// Whether `target` exists and holds exactly `length` bytes equal to `fd`'s bytes at
    /// `offset`. Any read error counts as no.
    static func holds(_ target: FilePath, sameBytesAs fd: FileDescriptor, at offset: Int64, length: Int64) -> Bool {
        guard let copy = try? FileOps.openForReading(target) else { return false }
        defer { try? copy.close() }
        guard let size = try? copy.fileSize(), size == length else { return false }
        var position: Int64 = 0
        while position < length {
            let count = min(Int64(1 << 20), length - position).clamped
            guard let original = try? fd.readBytes(at: offset + position, count: count),
                  let kept = try? copy.readBytes(at: position, count: count),
                  original.count == count, original == kept
            else { return false }
            position += Int64(count)
        }
        return true
    }
}
