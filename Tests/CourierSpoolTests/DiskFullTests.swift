import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

/// Runs a shell command; returns its exit status.
@discardableResult
func run(_ arguments: [String]) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
}

extension Trait where Self == ConditionTrait {
    /// Tests that mount a ``SmallDisk`` run only as root, and say so when skipped.
    static var rootForSmallDisk: Self {
        .enabled(if: getuid() == 0, "needs root to mount a small tmpfs (run the tests as root to include this test)")
    }
}

/// A tmpfs of `size` (such as "512k") mounted on a fresh directory, for running out of
/// space on purpose. Root only; `unmount()` it in a `defer` after everything on it is closed.
struct SmallDisk {
    let path: FilePath

    init(_ label: String, size: String) throws {
        path = TemporaryDirectory(label).sub("mnt")
        try FileManager.default.createDirectory(atPath: path.string, withIntermediateDirectories: true)
        try #require(run(["mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path.string]) == 0, "mount failed")
    }

    func unmount() { run(["umount", path.string]) }
}

@Suite("Disk full")
struct DiskFullTests {
    @Test(
        "appends fail with a storage error naming the file; nothing durable is lost; appends resume once space returns",
        .rootForSmallDisk
    )
    func diskFull() throws {
        let disk = try SmallDisk("full", size: "768k")
        defer { disk.unmount() }
        let mount = disk.path
        // A filler to delete later, to give space back.
        let filler = mount.appending("filler")
        try writeFile(filler, [UInt8](repeating: 1, count: 256 << 10))

        let data = mount.appending("data")
        let events = EventCollector()
        var accepted: [[UInt8]] = []
        do {
            let directory = try DataDirectory(path: data, configuration: configuration(.groupCommit, events: events))
            defer { directory.close() }
            let log = try directory.outboundLog(for: "peer")
            var failure: SpoolError?
            for i in 1...2000 {
                let body = payload(i, size: 1000)
                do {
                    let sequence = try log.appendAndWait(SpoolEntry(payload: body))
                    #expect(sequence == UInt64(accepted.count + 1))
                    accepted.append(body)
                } catch {
                    failure = error
                    break
                }
            }
            let error = try #require(failure)
            #expect(error.code == .storageFull)
            #expect(error.errno == .noSpace)
            #expect(error.path?.string.contains("seg-") == true)
            #expect(error.description.contains("full"))
            #expect(accepted.count > 100)
            // Still full: fails again, cleanly.
            #expect(throws: SpoolError.self) { try log.appendAndWait(SpoolEntry(payload: payload(0, size: 1000))) }
            // Everything accepted so far reads back intact.
            #expect(try allPending(log).map(\.payload) == accepted)
            // Space returns: appends resume without reopening.
            try FileManager.default.removeItem(atPath: filler.string)
            for i in 1...20 {
                let body = payload(10_000 + i, size: 1000)
                #expect(try log.appendAndWait(SpoolEntry(payload: body)) == UInt64(accepted.count + 1))
                accepted.append(body)
            }
        }
        let directory = try DataDirectory(path: data, configuration: configuration(.groupCommit, events: events))
        defer { directory.close() }
        let log = try directory.outboundLog(for: "peer")
        #expect(try allPending(log).map(\.payload) == accepted)
        #expect(events.corruptions.isEmpty)
        #expect(events.tornTails == 0)
    }
}
