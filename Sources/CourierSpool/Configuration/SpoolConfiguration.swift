import Logging

/// How a data directory's spools behave. A value: copy it, change it, pass it to
/// ``DataDirectory/init(path:configuration:)``.
package struct SpoolConfiguration: Sendable {
    /// When an append counts as durable.
    /// Default: ``DurabilityPolicy/groupCommit``.
    package var durability: DurabilityPolicy = .groupCommit

    /// The most bytes (records as stored, headers included) one peer's log may hold unacknowledged.
    /// Default: 1 GiB.
    package var maxPendingBytes: Int64 = 1 << 30

    /// The most records one peer's log may hold unacknowledged.
    /// Default: 10,000,000.
    package var maxPendingMessages: Int = 10_000_000

    /// What an append does when a limit is reached.
    /// Default: ``SpoolFullBehavior/wait``.
    package var whenFull: SpoolFullBehavior = .wait

    /// The size at which a segment file is closed and a new one started. Whole segments are
    /// deleted once acknowledged, so smaller segments free disk sooner; the newest one is
    /// also given back once everything is acknowledged and it holds at least
    /// min(1 MiB, segmentSize / 4). Between 256 bytes and 2 GiB.
    /// Default: 64 MiB.
    package var segmentSize: Int = 64 << 20

    /// How many wholly acknowledged segment files each peer's log keeps to reuse as new
    /// segments instead of deleting them (0: delete them at once, as before). Writing over
    /// a file's existing blocks makes each `fdatasync` cheaper than appending to a growing
    /// file, and a reused file is never freed, which on some disks stalls every sync while
    /// it happens. A spare unused for 10 seconds is deleted, so an idle peer holds none for
    /// long; on a full disk they are deleted at once. Between 0 and 64.
    /// Default: 2.
    package var spareSegments: Int = 2

    /// The largest record (payload plus its 40-byte header) accepted. At most 256 MiB.
    /// Default: 16 MiB.
    package var maxRecordSize: Int = 16 << 20

    /// How many sequence numbers one write of the high-water mark reserves. The mark is
    /// what keeps sequence numbers from being reused after the newest segment's tail is
    /// quarantined. A larger block means fewer writes; the next sequence number after such a
    /// quarantine jumps to the end of the current block.
    /// Default: 65,536.
    package var sequenceReservationBlock: UInt64 = 65_536

    /// Inbound deduplication state settings.
    /// Default: ``InboundConfiguration/init()``.
    package var inbound = InboundConfiguration()

    /// Where the spool logs (opens, recovery notices, corruption, I/O errors).
    /// Default: a logger labelled `courier.spool` that discards everything.
    package var logger: Logger = Logger(label: "courier.spool", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Called on a spool thread for each ``SpoolEvent`` (corruption found, torn tail
    /// truncated). Must return quickly and not call back into the spool synchronously.
    /// Default: `nil` (events are only logged).
    package var onEvent: (@Sendable (SpoolEvent) -> Void)?

    /// Hooks for tests; not for applications.
    package var testHooks = SpoolTestHooks()

    /// A configuration with every default.
    package init() {}
}

/// Settings of the inbound deduplication store.
package struct InboundConfiguration: Sendable {
    /// The most processed sequence numbers kept above a stream's contiguous processed mark
    /// (application acknowledgements out of order). Beyond it, marking fails with
    /// ``SpoolError/Code/tooManyOutOfOrder``; the receiver's window must stay below it.
    /// Default: 65,536.
    package var maxProcessedAboveMark: Int = 65_536

    /// How long the state of a sender's older stream incarnations is kept after the last
    /// activity on them, so late frames from them are still recognised.
    /// Default: 7 days.
    package var retainOldStreamsFor: Duration = .seconds(7 * 24 * 3600)

    /// The most streams kept per sender; beyond it, the least recently active ones are
    /// dropped (at open, at compaction, and by ``InboundStore/retire(sender:streamID:)``).
    /// A sender has one live stream per receiver; older ones are left over from a wiped
    /// spool. Default: 4.
    package var maxStreamsPerSender: Int = 4

    /// The journal is rewritten (compacted) when it grows past this size.
    /// Default: 8 MiB.
    package var compactionThreshold: Int = 8 << 20

    /// How far beyond what it hands out a receiver's durable *reservation ceiling* runs under
    /// group commit. Before a message is handed to the application the receiver writes its
    /// exact handed-out mark to the journal without waiting for a sync (a process crash
    /// keeps it: the page cache survives), and needs only a synced ceiling at or above the
    /// message, which it raises this far ahead, half a ceiling before it runs out. After an
    /// operating-system crash or power loss (see docs/SPOOL-FORMAT.md, "Inbound journal")
    /// every unprocessed number up to the ceiling is treated as possibly handed out, so at
    /// most this many messages per stream may then come flagged `redelivered` without
    /// having been handed out. Larger means fewer syncs waited for; 0 syncs every
    /// reservation before the hand-out.
    /// Default: 8,192.
    package var reservationAhead: Int = 8192

    /// A configuration with every default.
    package init() {}
}

/// Observation points for tests.
package struct SpoolTestHooks: Sendable {
    /// Called on the writer thread right after each successful `fdatasync` of an outbound
    /// segment, with the highest sequence number it covers, before any completion runs.
    package var afterSegmentSync: (@Sendable (UInt64) -> Void)?
    /// Replaces the operating system's boot id (16 bytes) for the inbound journal, to
    /// simulate a reboot between two opens.
    package var bootID: [UInt8]?
    /// Replaces how long a spare segment file may go unused (10 seconds).
    package var spareLifetime: Duration?
    package init() {}
}
