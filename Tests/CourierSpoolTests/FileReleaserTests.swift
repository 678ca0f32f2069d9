import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

/// Deleted files are freed a slice at a time, and only when that is safe
/// (docs/PERFORMANCE-HISTORY.md, "What limits each figure", item 9).
@Suite("Freeing deleted files")
struct FileReleaserTests {
    /// A file of `bytes` bytes at `path`, written and open for writing.
    private func makeFile(_ path: FilePath, bytes: Int) throws -> FileDescriptor {
        let fd = try FileOps.openForWriting(path, create: true)
        _ = try fd.writeAll(toAbsoluteOffset: 0, [UInt8](repeating: 7, count: bytes))
        return fd
    }

    /// A second descriptor of the same open file, to watch it after the first is closed.
    private func watch(_ fd: FileDescriptor) throws -> FileDescriptor {
        try fd.duplicate()
    }

    /// Hands a segment over `fd` (its file unlinked) to `releaser`, and returns once the
    /// releaser has let go of it (false if it was not taken, or not let go in time).
    private func releaseSegment(_ fd: FileDescriptor, at path: FilePath, to releaser: FileReleaser) async throws -> Bool {
        weak var gone: Segment?
        var deleted = [Segment(baseSequence: 1, path: path, fd: fd)]
        gone = deleted[0]
        try releaser.release(deleted: &deleted)
        guard deleted.isEmpty else { return false }
        return await eventually { gone == nil }
    }

    @Test("an unlinked file is cut down to nothing, slice by slice")
    func unlinkedFileIsFreed() throws {
        let temp = TemporaryDirectory("release")
        let path = temp.sub("big")
        let fd = try makeFile(path, bytes: 3 * Int(FileOps.freeSliceBytes) + 1000)
        defer { try? fd.close() }
        try FileOps.unlinkFile(path)
        FileOps.freeInSlices(fd)
        let status = try fd.stat()
        #expect(status.size == 0)
        #expect(status.blocksAllocated == 0)
    }

    @Test("a file that still has a name is left whole")
    func namedFileIsKept() throws {
        let temp = TemporaryDirectory("release")
        let path = temp.sub("kept")
        let bytes = 2 * Int(FileOps.freeSliceBytes)
        let fd = try makeFile(path, bytes: bytes)
        defer { try? fd.close() }
        FileOps.freeInSlices(fd)
        #expect(try fd.stat().size == Int64(bytes))
        #expect(try readFile(path).count == bytes)
    }

    @Test("the releaser slices a deleted segment nobody else holds, then closes it")
    func releaserSlicesDeletedSegment() async throws {
        let temp = TemporaryDirectory("release")
        let path = temp.sub("seg")
        let releaser = FileReleaser(streamingInterval: 0)
        let fd = try makeFile(path, bytes: 2 * Int(FileOps.freeSliceBytes))
        let watcher = try watch(fd)
        defer { try? watcher.close() }
        try FileOps.unlinkFile(path)
        #expect(try await releaseSegment(fd, at: path, to: releaser))
        #expect(try watcher.stat().size == 0)
    }

    @Test("a file handed over without its name is freed")
    func unlinkedFileHandedOver() async throws {
        let temp = TemporaryDirectory("release")
        let path = temp.sub("journal")
        let releaser = FileReleaser(streamingInterval: .max / 2)
        let fd = try makeFile(path, bytes: 2 * Int(FileOps.freeSliceBytes))
        let watcher = try watch(fd)
        defer { try? watcher.close() }
        try FileOps.unlinkFile(path)
        try releaser.release(unlinkedFile: fd)
        // Sliced whatever the pace of segment deletions (the releaser then closes it; its
        // number may already be another file's, so that is not checked here).
        #expect(await eventually { (try? watcher.stat().size) == 0 })
    }

    @Test("a deleted segment that a reader still holds is not cut under the reader")
    func heldSegmentIsNotCut() async throws {
        let temp = TemporaryDirectory("release")
        let path = temp.sub("seg")
        let releaser = FileReleaser(streamingInterval: 0)
        let bytes = 2 * Int(FileOps.freeSliceBytes)
        let fd = try makeFile(path, bytes: bytes)
        try FileOps.unlinkFile(path)
        var reader: Segment? = Segment(baseSequence: 1, path: path, fd: fd)
        var deleted = [reader!]
        try releaser.release(deleted: &deleted)
        // The releaser has let go once the reader's reference is the only one left.
        #expect(await eventually { isKnownUniquelyReferenced(&reader!) })
        #expect(try reader!.fd.readBytes(at: Int64(bytes) - 10, count: 10) == [UInt8](repeating: 7, count: 10))
        reader = nil
    }

    @Test("after the first, deletions in quick succession are freed in one piece")
    func streamingDeletionsAreNotSliced() async throws {
        let temp = TemporaryDirectory("release")
        // Every deletion after the first counts as close to the previous one.
        let releaser = FileReleaser(streamingInterval: .max / 2)
        var watchers: [FileDescriptor] = []
        defer { for watcher in watchers { try? watcher.close() } }
        let bytes = 2 * Int(FileOps.freeSliceBytes)
        for name in ["a", "b"] {
            let path = temp.sub(name)
            let fd = try makeFile(path, bytes: bytes)
            watchers.append(try watch(fd))
            try FileOps.unlinkFile(path)
            #expect(try await releaseSegment(fd, at: path, to: releaser))
        }
        #expect(try watchers[0].stat().size == 0)
        #expect(try watchers[1].stat().size == Int64(bytes))
    }

    @Test("a segment handed over whose file still has a name keeps its file and contents")
    func namedSegmentIsKept() async throws {
        let temp = TemporaryDirectory("release")
        let releaser = FileReleaser(streamingInterval: 0)
        let bytes = 2 * Int(FileOps.freeSliceBytes)
        let livePath = temp.sub("live")
        #expect(try await releaseSegment(try makeFile(livePath, bytes: bytes), at: livePath, to: releaser))
        #expect(try readFile(livePath).count == bytes)
    }

    @Test("several deletions at once are freed in one piece")
    func batchIsNotSliced() async throws {
        let temp = TemporaryDirectory("release")
        let releaser = FileReleaser(streamingInterval: 0)
        let bytes = 2 * Int(FileOps.freeSliceBytes)
        var deleted: [Segment] = []
        var watchers: [FileDescriptor] = []
        defer { for watcher in watchers { try? watcher.close() } }
        for name in ["a", "b"] {
            let path = temp.sub(name)
            let fd = try makeFile(path, bytes: bytes)
            watchers.append(try watch(fd))
            try FileOps.unlinkFile(path)
            deleted.append(Segment(baseSequence: 1, path: path, fd: fd))
        }
        weak let first = deleted[0], second = deleted[1]
        try releaser.release(deleted: &deleted)
        #expect(deleted.isEmpty)
        #expect(await eventually { first == nil && second == nil })
        for watcher in watchers { #expect(try watcher.stat().size == Int64(bytes)) }
    }
}
