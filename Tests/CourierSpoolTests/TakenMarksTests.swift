import Foundation
import SystemPackage
import Testing
@testable import CourierSpool

@Suite("Taken marks")
struct TakenMarksTests {
    let boot: [UInt8] = Array(1...16)
    let otherBoot: [UInt8] = Array(17...32)

    @Test("marks recorded through slots are found at the next open on the same boot; another boot, or a stream the store no longer has, finds none")
    func acrossOpens() throws {
        let temp = TemporaryDirectory("taken")
        let directory = temp.sub("inbound")
        try FileManager.default.createDirectory(atPath: directory.string, withIntermediateDirectories: true)
        let a = InboundStreamKey(sender: "alice", streamID: 7)
        let b = InboundStreamKey(sender: "bób", streamID: 9)
        do {
            let marks = try TakenMarks(directory: directory, bootID: boot, streams: [])
            #expect(marks.found.isEmpty)
            let slotA = try #require(marks.slot(for: a))
            let slotB = try #require(marks.slot(for: b))
            slotA.record(5)
            slotA.record(3)  // never backwards
            slotB.record(40)
            marks.slot(for: a)?.record(6)  // the same slot again
        }
        do {
            let marks = try TakenMarks(directory: directory, bootID: boot, streams: [a, b])
            #expect(marks.found == [a: 6, b: 40])
            marks.slot(for: a)?.record(8)
        }
        do {
            // Only streams the store still has are kept.
            let marks = try TakenMarks(directory: directory, bootID: boot, streams: [a])
            #expect(marks.found == [a: 8])
        }
        // After a reboot nothing is trusted (unsynced pages may be lost).
        let marks = try TakenMarks(directory: directory, bootID: otherBoot, streams: [a])
        #expect(marks.found.isEmpty)
        let none = try TakenMarks(directory: directory, bootID: nil, streams: [a])
        #expect(none.found.isEmpty)
    }

    @Test("a damaged header is not trusted")
    func damagedHeader() throws {
        let temp = TemporaryDirectory("taken-damaged")
        let directory = temp.sub("inbound")
        try FileManager.default.createDirectory(atPath: directory.string, withIntermediateDirectories: true)
        let a = InboundStreamKey(sender: "alice", streamID: 7)
        do {
            let marks = try TakenMarks(directory: directory, bootID: boot, streams: [])
            marks.slot(for: a)?.record(5)
        }
        let path = directory.appending("taken.map").string
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[20] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let marks = try TakenMarks(directory: directory, bootID: boot, streams: [a])
        #expect(marks.found.isEmpty)
    }

    @Test("every slot taken: a new stream gets none; a retired stream's slot is released, reused with its mark cleared, and not found at the next open")
    func slotsReleasedAndReused() throws {
        let temp = TemporaryDirectory("taken-slots")
        let directory = temp.sub("inbound")
        try FileManager.default.createDirectory(atPath: directory.string, withIntermediateDirectories: true)
        let marks = try TakenMarks(directory: directory, bootID: boot, streams: [])
        let keys = (1...UInt64(TakenMarks.slotCount)).map { InboundStreamKey(sender: "s", streamID: $0) }
        for key in keys { try #require(marks.slot(for: key)).record(key.streamID) }
        let late = InboundStreamKey(sender: "late", streamID: 1)
        #expect(marks.slot(for: late) == nil)
        marks.release(keys[0])
        let reused = try #require(marks.slot(for: late))
        #expect(reused.mark.pointee == 0)
        reused.record(3)
        let reopened = try TakenMarks(directory: directory, bootID: boot, streams: [keys[0], keys[1], late])
        #expect(reopened.found == [keys[1]: 2, late: 3])
    }
}
