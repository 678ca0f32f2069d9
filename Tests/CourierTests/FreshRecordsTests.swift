import CourierSpool
import Testing
@testable import Courier

@Suite("Fresh records")
struct FreshRecordsTests {
    func entries(_ count: Int, size: Int = 10) -> [SpoolEntry] {
        (0..<count).map { SpoolEntry(payload: [UInt8](repeating: UInt8($0 % 256), count: size), expiresAt: 42) }
    }

    @Test("a contiguous run is served from its first number, and dropped as it is sent")
    func servesRun() throws {
        var fresh = FreshRecords(maxCount: 100, maxBytes: 10_000)
        fresh.add(1...3, entries(3), at: 7)
        fresh.add(4...5, entries(2), at: 8)
        #expect(fresh.first == 1)
        #expect(fresh.records(from: 2, limit: 10, maxBytes: 1000) == nil)  // only from the run's start
        let served = try #require(fresh.records(from: 1, limit: 4, maxBytes: 1000))
        #expect(served.map(\.sequenceNumber) == [1, 2, 3, 4])
        #expect(served.allSatisfy { $0.expiresAt == 42 && $0.payload.count == 10 })
        #expect(fresh.records(from: 1, limit: 10, maxBytes: 25)?.count == 2)  // 10 + 10 bytes
        fresh.drop(through: 4)
        #expect(fresh.first == 5)
        #expect(fresh.records(from: 5, limit: 10, maxBytes: 1)?.count == 1)  // one always goes
        fresh.drop(through: 5)
        #expect(fresh.first == nil)
        // Empty again: a new run may start anywhere.
        fresh.add(9...9, entries(1), at: 9)
        #expect(fresh.first == 9)
    }

    @Test("a gap or the bounds stop the run; the spool serves the rest")
    func bounded() {
        var fresh = FreshRecords(maxCount: 4, maxBytes: 1_000)
        fresh.add(1...3, entries(3), at: 0)
        fresh.add(5...5, entries(1), at: 0)          // gap: ignored
        #expect(fresh.records(from: 1, limit: 10, maxBytes: 1000)?.count == 3)
        fresh.add(4...5, entries(2), at: 0)          // 5 records > maxCount 4: ignored
        #expect(fresh.records(from: 1, limit: 10, maxBytes: 1000)?.count == 3)
        fresh.add(4...4, entries(1, size: 2_000), at: 0)  // over maxBytes: ignored
        #expect(fresh.records(from: 1, limit: 10, maxBytes: 1000)?.count == 3)
        fresh.add(4...4, entries(1), at: 0)
        #expect(fresh.records(from: 1, limit: 10, maxBytes: 1000)?.map(\.sequenceNumber) == [1, 2, 3, 4])
    }
}
