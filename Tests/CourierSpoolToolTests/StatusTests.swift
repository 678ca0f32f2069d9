import Foundation
import SystemPackage
import Testing
@testable import CourierSpool
@testable import CourierSpoolToolKit

@Suite("status")
struct StatusTests {
    static let second: Int64 = 1_000_000_000

    /// A status with every column filled, at fixed times.
    static let sample = SpoolStatus(
        peers: [
            PeerSpoolStatus(
                peer: "C", directory: FilePath("/data/p/outbound/~C"), streamID: 0x1A2B_3C4D_5E6F_7081, nextSequenceNumber: 1003,
                acknowledgedUpTo: 0, pendingCount: 1002, pendingBytes: 80_160, oldestPendingEnqueuedAt: fixedNow - 192 * second,
                segmentCount: 1, deadLetterCount: 1, quarantinedFiles: []
            ),
            PeerSpoolStatus(
                peer: "warehouse-eu", directory: FilePath("/data/p/outbound/~warehouse-eu"), streamID: 0xF00D, nextSequenceNumber: 250_001,
                acknowledgedUpTo: 250_000, pendingCount: 0, pendingBytes: 0, oldestPendingEnqueuedAt: nil,
                segmentCount: 1, spareFileCount: 2, spareBytes: 16 << 20, deadLetterCount: 0,
                quarantinedFiles: [FilePath("/data/p/outbound/~warehouse-eu/quarantine/seg-00000000000000000001.log.at-4096.quarantined")]
            ),
        ],
        inbound: [
            InboundStreamState(sender: "C", streamID: 0xBEEF, processedUpTo: 41, processedAbove: [43, 44], reservedUpTo: 50, lastActivity: fixedNow - 3 * 3600 * second),
        ],
        lockHolderPID: 4242
    )

    @Test("golden: the human format, aligned, sizes and ages in human units")
    func golden() {
        let report = StatusReport(dataDirectory: "/data/p", status: Self.sample, lock: .held(pid: 4242), now: fixedNow)
        expectSameText(report.human(), """
            Data directory /data/p
            Lock: held by pid 4242 (a node is running)

            Outbound (pending = appended, not yet acknowledged)
            PEER          STREAM            NEXT SEQ  ACKED UP TO  PENDING  PENDING SIZE  OLDEST PENDING   SPARE FILES  DEAD LETTERS  QUARANTINED
            C             1a2b3c4d5e6f7081      1003            0     1002      78.3 KiB          3m 12s             0             1            0
            warehouse-eu  f00d                250001       250000        0           0 B               -  2 (16.0 MiB)             0            1
              quarantined (peer warehouse-eu): /data/p/outbound/~warehouse-eu/quarantine/seg-00000000000000000001.log.at-4096.quarantined

            Inbound (deduplication state per sender and stream)
            SENDER  STREAM  PROCESSED UP TO  OUT OF ORDER  RESERVED UP TO  LAST ACTIVITY
            C       beef                 41             2              50     3h 00m ago

            """)
    }

    @Test("golden: an empty directory, no node running")
    func goldenEmpty() {
        let report = StatusReport(dataDirectory: "d", status: SpoolStatus(peers: [], inbound: [], lockHolderPID: 7), lock: .free(lastPID: 7), now: fixedNow)
        expectSameText(report.human(), """
            Data directory d
            Lock: free (no node running; last holder pid 7)

            Outbound: no peers

            Inbound: no senders

            """)
    }

    @Test("golden: the JSON format, numbers as numbers")
    func goldenJSON() {
        let report = StatusReport(dataDirectory: "/data/p", status: Self.sample, lock: .held(pid: 4242), now: fixedNow)
        let peers = report.json().rendered(pretty: false)
        #expect(peers == #"{"data_directory":"/data/p","lock":{"held":true,"pid":4242},"peers":[{"peer":"C","stream":"1a2b3c4d5e6f7081","next_seq":1003,"acknowledged_up_to":0,"pending":1002,"pending_bytes":80160,"oldest_pending_enqueued_at":"2025-03-01T11:56:48.000Z","oldest_pending_age_seconds":192.0,"segments":1,"spare_files":0,"spare_bytes":0,"dead_letters":1,"quarantined_files":[]},{"peer":"warehouse-eu","stream":"f00d","next_seq":250001,"acknowledged_up_to":250000,"pending":0,"pending_bytes":0,"oldest_pending_enqueued_at":null,"oldest_pending_age_seconds":null,"segments":1,"spare_files":2,"spare_bytes":16777216,"dead_letters":0,"quarantined_files":["/data/p/outbound/~warehouse-eu/quarantine/seg-00000000000000000001.log.at-4096.quarantined"]}],"inbound":[{"sender":"C","stream":"beef","processed_up_to":41,"out_of_order":2,"reserved_up_to":50,"reservation_ceiling":50,"last_activity":"2025-03-01T09:00:00.000Z"}]}"#)
    }

    @Test("a real directory: pending, acknowledged, dead letters and inbound state, as a table and as JSON")
    func realDirectory() throws {
        let temp = TemporaryDirectory("status")
        let path = temp.sub("p")
        let stream = try makeDataDirectory(path, count: 12, acknowledged: 4, deadLetters: true, inbound: true)
        let human = tool(["status", path.string])
        #expect(human.status == 0)
        #expect(human.standardError.isEmpty)
        let lines = human.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("Lock: free (no node running; last holder pid \(getpid()))") })
        let row = try #require(lines.first { $0.hasPrefix("C ") })
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).prefix(5) == ["C", Substring(String(stream, radix: 16)), "13", "4", "8"])
        #expect(row.contains("560 B"))  // 8 × (40-byte header + 30-byte payload)
        #expect(lines.contains { $0.hasPrefix("P ") && $0.contains(" abc ") })

        let run = tool(["status", path.string, "--json"])
        #expect(run.status == 0)
        let json = try run.json()
        let peers = try #require(json["peers"] as? [[String: Any]])
        let peer = try #require(peers.first)
        #expect(peer["peer"] as? String == "C")
        #expect(peer["stream"] as? String == String(stream, radix: 16))
        #expect(peer["next_seq"] as? Int == 13)
        #expect(peer["acknowledged_up_to"] as? Int == 4)
        #expect(peer["pending"] as? Int == 8)
        #expect(peer["pending_bytes"] as? Int == 560)
        #expect(peer["dead_letters"] as? Int == 2)
        #expect((peer["oldest_pending_age_seconds"] as? Double).map { $0 >= 0 && $0 < 60 } == true)
        let inbound = try #require((json["inbound"] as? [[String: Any]])?.first)
        #expect(inbound["sender"] as? String == "P")
        #expect(inbound["processed_up_to"] as? Int == 10)
        #expect(inbound["out_of_order"] as? Int == 1)
        #expect(inbound["reserved_up_to"] as? Int == 12)
        #expect(inbound["reservation_ceiling"] as? Int == 12)
        let lock = try #require(json["lock"] as? [String: Any])
        #expect(lock["held"] as? Bool == false)
    }

    @Test("the lock holder's pid while a node has the directory open")
    func lockHeld() throws {
        let temp = TemporaryDirectory("status-lock")
        let path = temp.sub("p")
        try makeDataDirectory(path, count: 3)
        let directory = try DataDirectory(path: path)
        defer { directory.close() }
        let run = tool(["status", path.string, "--json"])
        let lock = try #require(try run.json()["lock"] as? [String: Any])
        #expect(lock["held"] as? Bool == true)
        #expect(lock["pid"] as? Int == Int(getpid()))
        #expect(tool(["status", path.string]).standardOutput.contains("Lock: held by pid \(getpid()) (a node is running)"))
    }

    @Test("a wiped sender starts a new stream: the spool shows it, the receiver keeps both apart")
    func wiped() throws {
        let temp = TemporaryDirectory("status-wiped")
        let path = temp.sub("p")
        let first = try makeDataDirectory(path, count: 5)
        try FileManager.default.removeItem(atPath: path.string)
        let second = try makeDataDirectory(path, count: 2)
        #expect(first != second)
        let peer = try #require((try tool(["status", path.string, "--json"]).json()["peers"] as? [[String: Any]])?.first)
        #expect(peer["stream"] as? String == String(second, radix: 16))
        #expect(peer["next_seq"] as? Int == 3)
        #expect(peer["pending"] as? Int == 2)

        // The receiver's side: the same sender with two streams.
        let receiver = temp.sub("c")
        let directory = try DataDirectory(path: receiver)
        try directory.inbound.markProcessedAndWait(sender: "P", streamID: first, sequenceNumbers: [1, 2, 3, 4, 5])
        try directory.inbound.markProcessedAndWait(sender: "P", streamID: second, sequenceNumbers: [1])
        directory.close()
        let inbound = try #require(try tool(["status", receiver.string, "--json"]).json()["inbound"] as? [[String: Any]])
        let byStream = Dictionary(uniqueKeysWithValues: inbound.map { ($0["stream"] as? String ?? "", $0["processed_up_to"] as? Int ?? -1) })
        #expect(byStream == [String(first, radix: 16): 5, String(second, radix: 16): 1])
    }

    @Test("status and verify run while a node appends, acknowledges and deletes segments")
    func liveWriter() async throws {
        let temp = TemporaryDirectory("status-live")
        let path = temp.sub("p")
        var configuration = SpoolConfiguration()
        configuration.durability = .none
        configuration.segmentSize = 4096
        let directory = try await DataDirectory.open(path: path, configuration: configuration)
        defer { directory.close() }
        let log = try await directory.outboundLog(for: "C")
        let writer = Task.detached {
            for i in 1...3000 {
                _ = try await log.append(payload(i, size: 60))
                if i % 50 == 0 { _ = try log.acknowledge(upTo: UInt64(i - 20)) }
            }
        }
        var runs = 0
        repeat {
            let status = tool(["status", path.string, "--json"])
            #expect(status.status == 0, "\(status.standardError)")
            let peer = try #require((try status.json()["peers"] as? [[String: Any]])?.first)
            #expect(peer["peer"] as? String == "C")
            let verify = tool(["verify", path.string])
            #expect(verify.status == 0, "\(verify.standardOutput)\(verify.standardError)")
            #expect(!verify.standardOutput.contains("DAMAGED"))
            let dump = tool(["dump", path.string, "--peer", "C", "--json", "--limit", "50"])
            #expect(dump.status == 0, "\(dump.standardError)")
            runs += 1
        } while log.nextSequenceNumber <= 3000
        try await writer.value
        #expect(runs > 1)
        try await log.flush()
        let final = try #require((try tool(["status", path.string, "--json"]).json()["peers"] as? [[String: Any]])?.first)
        #expect(final["next_seq"] as? Int == 3001)
        #expect(final["acknowledged_up_to"] as? Int == 2980)
        #expect(final["pending"] as? Int == 20)
    }
}
