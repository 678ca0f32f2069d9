import CourierSystem
import Synchronization
import SystemPackage

/// Frees deleted files on a thread of its own: acknowledged segments, and inbound journals
/// replaced by a compaction.
///
/// Unlinking a segment only removes its name; the file's blocks and page-cache pages are
/// freed when its last descriptor closes. For a segment of several MiB that takes
/// milliseconds (6–9 ms for 8 MiB on ext4 here), and while it runs the file system holds
/// up every `fdatasync` on the same disk, in this process and in others. Done by the writer
/// it delayed every append queued behind it; done in one piece anywhere, it stalls both
/// ends' syncs at each deletion (a latency spike every segment's worth of messages). Spool
/// writers hand their deleted segments here, and the inbound store the journal a compaction
/// replaced; this thread frees each unlinked file a slice at a time
/// (``FileOps/freeInSlices(_:)``) before closing it.
///
/// Slicing costs total throughput when segments go by faster than ``streamingInterval``
/// (a sender streaming large messages at full speed: 64 KiB messages at saturation ran
/// about 30 % slower with every deletion sliced), and there the spikes of single syncs
/// matter less than the rate. Such deletions are freed in one piece, and so is every
/// later one until a gap of two intervals shows that the stream has slowed down.
///
/// Only a file that is unlinked and that nobody else holds (no read in flight) is sliced;
/// other references are simply dropped, and the last `close` happens wherever the last
/// reference goes. One releaser serves the whole process; its thread starts with the first
/// release and then sleeps until there is something to free. If that thread cannot start,
/// the release frees the files on the caller's thread instead and throws the reason; the
/// next release tries again.
final class FileReleaser: Sendable {
    static let shared = FileReleaser()

    /// Deletions closer together than this (nanoseconds) are freed in one piece, and so
    /// are later ones until a gap of twice this.
    let streamingInterval: Int64

    private struct Batch {
        var deleted: [Segment] = []
        var files: [FileDescriptor] = []
    }

    private let queue = Mutex(Batch())
    /// The running thread's wake-up, once it started.
    private let running: Mutex<WakeEvent?> = Mutex(nil)

    /// The shared releaser uses 40 ms; tests make their own.
    init(streamingInterval: Int64 = 40_000_000) {
        self.streamingInterval = streamingInterval
    }

    /// Takes the caller's references to segments whose files it has unlinked (leaving
    /// `deleted` empty) and frees and closes them on the releaser's thread. The caller must
    /// hold no other reference to them by then, or they are only dropped here.
    /// - Throws: when the releaser's thread cannot start; the files were then freed and
    ///   closed on the calling thread.
    func release(deleted: inout [Segment]) throws(SpoolError) {
        guard !deleted.isEmpty else { return }
        queue.withLock { queue in
            queue.deleted.append(contentsOf: deleted)
            deleted = []
        }
        try wakeOrFreeHere()
    }

    /// Takes over `fd`, a descriptor of a file that has no name left, to free it in slices
    /// and close it. Deletions of this kind are rare (a journal compaction) and always
    /// sliced.
    /// - Throws: when the releaser's thread cannot start; the file was then freed and
    ///   closed on the calling thread.
    func release(unlinkedFile fd: FileDescriptor) throws(SpoolError) {
        queue.withLock { $0.files.append(fd) }
        try wakeOrFreeHere()
    }

    /// Wakes the releaser's thread, starting it first if needed; if it cannot start, frees
    /// what is queued here and throws why.
    private func wakeOrFreeHere() throws(SpoolError) {
        do throws(SpoolError) {
            try startIfNeeded().wake()
        } catch {
            var streaming = true
            var lastDeletion = Int64.min / 2
            freeQueued(streaming: &streaming, lastDeletion: &lastDeletion)
            throw error
        }
    }

    private func startIfNeeded() throws(SpoolError) -> WakeEvent {
        try running.withLock { running throws(SpoolError) -> WakeEvent in
            if let running { return running }
            let wake: WakeEvent
            do throws(WakeEvent.CreateError) { wake = try WakeEvent() } catch { throw .wakeEvent(error, doing: "starting the file releaser") }
            do throws(OSThread.StartError) {
                try OSThread.detached(name: "spool-release") { [self] in
                    var lastDeletion = Int64.min / 2
                    var streaming = false
                    while true {
                        wake.wait(timeoutNanoseconds: nil)
                        freeQueued(streaming: &streaming, lastDeletion: &lastDeletion)
                    }
                }
            } catch {
                throw .threadStart(error, doing: "starting the file releaser")
            }
            running = wake
            return wake
        }
    }

    /// Frees and closes everything queued: sliced unless deletions are streaming by.
    private func freeQueued(streaming: inout Bool, lastDeletion: inout Int64) {
        var batch = queue.withLock { queue -> Batch in
            var taken = Batch()
            swap(&taken, &queue)
            return taken
        }
        for fd in batch.files {
            FileOps.freeInSlices(fd)
            try? fd.close()
        }
        guard !batch.deleted.isEmpty else { return }
        let now = monotonicNanoseconds()
        let gap = now - lastDeletion
        lastDeletion = now
        if batch.deleted.count > 1 || gap < streamingInterval {
            streaming = true
        } else if gap / 2 >= streamingInterval {
            streaming = false
        }
        while var segment = batch.deleted.popLast() {
            if !streaming, isKnownUniquelyReferenced(&segment) { FileOps.freeInSlices(segment.fd) }
            // The reference ends here: Segment.deinit closes the descriptor.
        }
    }
}
