import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

/// The reservation a receiver makes before each hand-out: written at once under a synced
/// ceiling, exact after a process crash, raised to the ceiling after a reboot.
@Suite("Reservation ceiling")
struct ReservationCeilingTests {
    static let bootA: [UInt8] = Array(1...16)
    static let bootB: [UInt8] = Array(17...32)

    func settings(boot: [UInt8], ahead: Int = 100, _ durability: DurabilityPolicy = .groupCommit) -> SpoolConfiguration {
        configuration(durability) {
            $0.inbound.reservationAhead = ahead
            $0.testHooks.bootID = boot
        }
    }

    /// The inbound journal's path in data directory `path`.
    func journal(in path: FilePath) -> FilePath {
        path.appending("inbound").appending("inbound.journal")
    }

    /// A data directory at `path` whose inbound journal is `bytes` (what a crash, or a
    /// power loss, left behind).
    func dataDirectory(at path: FilePath, journal bytes: [UInt8]) throws -> FilePath {
        try FileManager.default.createDirectory(atPath: path.appending("inbound").string, withIntermediateDirectories: true)
        try writeFile(journal(in: path), bytes)
        return path
    }

    /// Opens a data directory in `temp` on boot A, runs `before` on it, closes it cleanly,
    /// and returns it opened again on boot B: a reboot after a graceful stop. Keep `temp`
    /// alive while the directory is in use (releasing it removes the directory).
    func reopenedAfterReboot(_ temp: TemporaryDirectory, _ before: (DataDirectory) async throws -> Void) async throws -> DataDirectory {
        let path = temp.sub("data")
        let directory = try await DataDirectory.open(path: path, configuration: settings(boot: Self.bootA))
        try await before(directory)
        directory.close()
        return try await DataDirectory.open(path: path, configuration: settings(boot: Self.bootB))
    }

    /// Calls `reserveForHandOut`; when it says to wait, waits for the completion (which must
    /// succeed). Returns whether it could hand out at once.
    func reserve(_ store: InboundStore, _ sender: String = "a", upTo mark: UInt64) async throws -> Bool {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Bool, SpoolError>, Never>) in
            let now = store.reserveForHandOut(sender: sender, streamID: 1, upTo: mark) { result in
                continuation.resume(returning: result.map { false })
            }
            if now { continuation.resume(returning: .success(true)) }
        }
        return try result.get()
    }

    @Test("a stream's first reservation waits for a synced ceiling; later ones are written at once until it nears")
    func waitsOnlyForCeilings() async throws {
        let temp = TemporaryDirectory("ceiling-wait")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: settings(boot: Self.bootA))
        defer { directory.close() }
        let store = directory.inbound
        #expect(try await reserve(store, upTo: 1) == false)
        #expect(store.durableCeiling(sender: "a", streamID: 1) == 101)
        #expect(try await reserve(store, upTo: 40) == true)
        #expect(store.state(sender: "a", streamID: 1)?.reservedUpTo == 40)
        // 60 is within the synced ceiling, but past its half: handed out now, and the ceiling
        // is raised in the background.
        #expect(try await reserve(store, upTo: 60) == true)
        #expect(await eventually { store.durableCeiling(sender: "a", streamID: 1) == 160 })
        #expect(try await reserve(store, upTo: 150) == true)
        // Far beyond the ceiling: the hand-out waits for the sync.
        #expect(try await reserve(store, upTo: 1_000) == false)
        #expect(store.durableCeiling(sender: "a", streamID: 1) == 1_100)
        // Another stream has its own ceiling.
        #expect(try await reserve(store, "b", upTo: 5) == false)
    }

    @Test("an unsynced reservation is exact after a crash on the same boot; after a reboot the ceiling counts")
    func crashVersusReboot() async throws {
        let temp = TemporaryDirectory("ceiling-crash")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: settings(boot: Self.bootA))
        defer { directory.close() }
        _ = try await reserve(directory.inbound, upTo: 3)
        try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: [1, 2])
        #expect(try await reserve(directory.inbound, upTo: 30) == true)
        // What a process killed now leaves behind: the journal as the page cache holds it.
        let left = try readFile(journal(in: temp.sub("data")))
        for (boot, expected) in [(Self.bootA, UInt64(30)), (Self.bootB, 103)] {
            let copy = try dataDirectory(at: temp.sub("copy-\(expected)"), journal: left)
            let reopened = try await DataDirectory.open(path: copy, configuration: settings(boot: boot))
            let state = try #require(reopened.inbound.state(sender: "a", streamID: 1))
            #expect(state.processedUpTo == 2)
            #expect(state.reservedUpTo == expected, "boot \(boot == Self.bootA ? "same" : "another")")
            #expect(state.disposition(of: 30) == .redelivery)
            #expect(state.disposition(of: 31) == (boot == Self.bootA ? .new : .redelivery))
            reopened.close()
        }
    }

    @Test("a journal cut back to its last sync (a power loss) still covers every number handed out")
    func powerLossKeepsCeiling() async throws {
        let temp = TemporaryDirectory("ceiling-powerloss")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: settings(boot: Self.bootA))
        defer { directory.close() }
        let journalPath = journal(in: temp.sub("data"))
        #expect(try await reserve(directory.inbound, upTo: 2) == false)
        let synced = try readFile(journalPath)
        for mark in stride(from: 5, through: 90, by: 5) {
            #expect(try await reserve(directory.inbound, upTo: UInt64(mark)) == true)
        }
        #expect(try readFile(journalPath).count > synced.count)
        // Lose everything written after the sync; another boot id says so at open.
        let copy = try dataDirectory(at: temp.sub("copy"), journal: synced)
        let reopened = try await DataDirectory.open(path: copy, configuration: settings(boot: Self.bootB))
        defer { reopened.close() }
        let state = try #require(reopened.inbound.state(sender: "a", streamID: 1))
        #expect(state.reservedUpTo >= 90)
        #expect((1...90).allSatisfy { state.disposition(of: UInt64($0)) == .redelivery })
    }

    @Test("a reboot after a clean close flags nothing that was not handed out")
    func cleanCloseThenReboot() async throws {
        let temp = TemporaryDirectory("ceiling-clean")
        let directory = try await reopenedAfterReboot(temp) { directory in
            _ = try await reserve(directory.inbound, upTo: 1)
            #expect(try await reserve(directory.inbound, upTo: 10) == true)
            try await directory.inbound.markProcessed(sender: "a", streamID: 1, sequenceNumbers: Array(1...8))
        }
        defer { directory.close() }
        let state = try #require(directory.inbound.state(sender: "a", streamID: 1))
        #expect(state.reservedUpTo == 10 && state.reservationCeiling == 10)
        #expect(state.disposition(of: 9) == .redelivery)
        #expect(state.disposition(of: 11) == .new)
    }

    @Test("compaction while reservations are written from another thread loses none of them")
    func compactionWithReservations() async throws {
        let temp = TemporaryDirectory("ceiling-compact")
        let path = temp.sub("data")
        let compacting = configuration {
            $0.inbound.reservationAhead = 64
            $0.inbound.compactionThreshold = 4096
            $0.testHooks.bootID = Self.bootA
        }
        let journalPath = journal(in: path)
        let directory = try await DataDirectory.open(path: path, configuration: compacting)
        var largest = 0
        for mark in 1...2_000 {
            _ = try await reserve(directory.inbound, upTo: UInt64(mark))
            if mark % 3 == 0 {
                try await directory.inbound.markProcessed(sender: "b", streamID: 1, sequenceNumbers: [UInt64(mark / 3)])
            }
            largest = max(largest, try readFile(journalPath).count)
        }
        // What a crash now leaves (same boot): every reservation, across the compactions.
        let copy = try dataDirectory(at: temp.sub("copy"), journal: try readFile(journalPath))
        directory.close()
        #expect(largest < 64 * 1024, "the journal was compacted (largest \(largest) bytes)")
        let reopened = try await DataDirectory.open(path: copy, configuration: compacting)
        defer { reopened.close() }
        #expect(reopened.inbound.state(sender: "a", streamID: 1)?.reservedUpTo == 2_000)
        #expect(reopened.inbound.state(sender: "b", streamID: 1)?.processedUpTo == 666)
    }

    @Test("under the interval policy reservations written at once are synced within the interval")
    func intervalSyncsReservations() async throws {
        let temp = TemporaryDirectory("ceiling-interval")
        let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: settings(boot: Self.bootA, .interval(.milliseconds(20))))
        defer { directory.close() }
        #expect(try await reserve(directory.inbound, upTo: 1) == true)
        let before = directory.inbound.syncCount
        #expect(try await reserve(directory.inbound, upTo: 2) == true)
        #expect(await eventually { directory.inbound.syncCount > before })
    }

    @Test("lowering the reservation at a graceful stop lowers the ceiling: a reboot then flags nothing more")
    func loweringLowersCeiling() async throws {
        let temp = TemporaryDirectory("ceiling-lower")
        let directory = try await reopenedAfterReboot(temp) { directory in
            _ = try await reserve(directory.inbound, upTo: 10)
            let lowered = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, SpoolError>, Never>) in
                directory.inbound.lowerReservation(sender: "a", streamID: 1, to: 4) { continuation.resume(returning: $0) }
            }
            try lowered.get()
            #expect(directory.inbound.state(sender: "a", streamID: 1)?.reservationCeiling == 4)
            #expect(directory.inbound.durableCeiling(sender: "a", streamID: 1) == 4)
        }
        defer { directory.close() }
        #expect(directory.inbound.state(sender: "a", streamID: 1)?.reservedUpTo == 4)
    }

    @Test("without group commit nothing waits for a ceiling")
    func otherPolicies() async throws {
        for policy in [DurabilityPolicy.none, .interval(.milliseconds(5))] {
            let temp = TemporaryDirectory("ceiling-policy")
            let directory = try await DataDirectory.open(path: temp.sub("data"), configuration: settings(boot: Self.bootA, policy))
            #expect(try await reserve(directory.inbound, upTo: 1) == true)
            #expect(try await reserve(directory.inbound, upTo: 50_000) == true)
            #expect(directory.inbound.state(sender: "a", streamID: 1)?.reservedUpTo == 50_000)
            directory.close()
            let reopened = try await DataDirectory.open(path: temp.sub("data"), configuration: settings(boot: Self.bootA, policy))
            #expect(reopened.inbound.state(sender: "a", streamID: 1)?.reservedUpTo == 50_000)
            reopened.close()
        }
    }

    @Test("a version-1 journal (no ceiling, no boot id) reads as exact on any boot and is rewritten as the current version (3)")
    func formatOneSnapshots() async throws {
        let temp = TemporaryDirectory("ceiling-v1")
        let path = temp.sub("data")
        var body = ByteWriter(capacity: 64)
        body.u8(1)
        body.append(Array("a".utf8))
        body.u64(1)     // stream id
        body.u64(2)     // processed up to
        body.u64(7)     // reserved up to
        body.u32(1)     // one processed number above the mark
        body.u64(5)
        var file = ByteWriter(capacity: 256)
        file.append(FileHeader(kind: .inbound, version: 1, streamID: 0, baseSequence: 0, createdAt: 1).encoded())
        RecordFormat.encode(into: &file, type: .inboundState, sequenceNumber: 0, enqueuedAt: 1, expiresAt: nil, attempt: 0, flags: 0, body: body.bytes)
        let journalPath = journal(in: try dataDirectory(at: path, journal: file.bytes))
        for _ in 0..<2 {
            let directory = try await DataDirectory.open(path: path, configuration: settings(boot: Self.bootB))
            let state = try #require(directory.inbound.state(sender: "a", streamID: 1))
            #expect(state.processedUpTo == 2 && state.processedAbove == [5])
            #expect(state.reservedUpTo == 7 && state.reservationCeiling == 7)
            #expect(try readFile(journalPath)[8..<10] == [3, 0])
            directory.close()
        }
    }

    @Test("reservationAhead 0 (or negative) syncs every reservation before its hand-out under group commit")
    func noCeilingAhead() async throws {
        for ahead in [0, -5] {
            let temp = TemporaryDirectory("ceiling-zero")
            let group = try await DataDirectory.open(path: temp.sub("group"), configuration: settings(boot: Self.bootA, ahead: ahead))
            for mark in [1, 2, 3] as [UInt64] {
                let syncs = group.inbound.syncCount
                #expect(try await reserve(group.inbound, upTo: mark) == false)
                #expect(group.inbound.syncCount > syncs)
            }
            group.close()
            let none = try await DataDirectory.open(path: temp.sub("none"), configuration: settings(boot: Self.bootA, ahead: ahead, .none))
            #expect(try await reserve(none.inbound, upTo: 1) == true)
            none.close()
        }
    }

    @Test("on a full disk a reservation that cannot be written is not handed out; once space returns it is", .rootForSmallDisk)
    func fullDisk() async throws {
        let disk = try SmallDisk("ceiling-full", size: "256k")
        defer { disk.unmount() }
        let directory = try await DataDirectory.open(path: disk.path.appending("data"), configuration: settings(boot: Self.bootA, ahead: 1_000_000))
        #expect(try await reserve(directory.inbound, upTo: 1) == false)
        let filler = disk.path.appending("filler")
        run(["dd", "if=/dev/zero", "of=\(filler.string)", "bs=4k"])
        var failure: SpoolError?
        for mark in 2...2_000 {
            do { _ = try await reserve(directory.inbound, upTo: UInt64(mark)) } catch let error as SpoolError {
                failure = error
                break
            }
        }
        #expect(failure?.code == .storageFull)
        try FileManager.default.removeItem(atPath: filler.string)
        // The store's thread retries after its back-off; a reservation goes through again.
        _ = try await reserve(directory.inbound, upTo: 3_000)
        #expect(directory.inbound.state(sender: "a", streamID: 1)?.reservedUpTo == 3_000)
        directory.close()
        let reopened = try await DataDirectory.open(path: disk.path.appending("data"), configuration: settings(boot: Self.bootA))
        #expect(reopened.inbound.state(sender: "a", streamID: 1)?.reservedUpTo == 3_000)
        reopened.close()
    }

    @Test("closing on a full disk returns; reservations written before stand", .rootForSmallDisk)
    func closeOnFullDisk() async throws {
        let disk = try SmallDisk("ceiling-close-full", size: "256k")
        defer { disk.unmount() }
        let path = disk.path.appending("data")
        let directory = try await DataDirectory.open(path: path, configuration: settings(boot: Self.bootA, ahead: 1_000_000))
        #expect(try await reserve(directory.inbound, upTo: 1) == false)
        let filler = disk.path.appending("filler")
        run(["dd", "if=/dev/zero", "of=\(filler.string)", "bs=4k"])
        // Reserve until the journal's last page is full and a write fails.
        var written: UInt64 = 1
        for mark in 2...2_000 as ClosedRange<UInt64> {
            do { _ = try await reserve(directory.inbound, upTo: mark) } catch { break }
            written = mark
        }
        #expect(written < 2_000)
        // close() must lower the ceiling, which it cannot write now: it gives up, it does not hang.
        let closed = AtomicBox()
        let thread = Thread {
            directory.close()
            closed.set(1)
        }
        thread.start()
        #expect(await eventually(timeout: .seconds(10)) { closed.get() == 1 }, "close() returned on a full disk")
        try FileManager.default.removeItem(atPath: filler.string)
        let reopened = try await DataDirectory.open(path: path, configuration: settings(boot: Self.bootA))
        #expect((reopened.inbound.state(sender: "a", streamID: 1)?.reservedUpTo ?? 0) >= written)
        reopened.close()
    }

    @Test("boot ids parse from the kernel's text; this system has one")
    func bootIDs() {
        #expect(BootID.parse(Array("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n".utf8)) == [0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0])
        #expect(BootID.parse(Array("0f1e2d3c-4b5a".utf8)) == nil)
        #expect(BootID.parse(Array("zz1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".utf8)) == nil)
        #expect(BootID.parse(Array("00000000-0000-0000-0000-000000000000".utf8)) == nil)
        #if os(Linux)
        #expect(BootID.current?.count == 16)
        #endif
    }
}
