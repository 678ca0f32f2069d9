import Foundation
import Logging
import Synchronization
import SystemPackage
import Testing
@testable import CourierSpool
@_exported import SpoolTestSupport

/// Collects spool events for assertions.
final class EventCollector: Sendable {
    let events = Mutex<[SpoolEvent]>([])
    var handler: @Sendable (SpoolEvent) -> Void { { event in self.events.withLock { $0.append(event) } } }
    var all: [SpoolEvent] { events.withLock { $0 } }
    var corruptions: [CorruptionReport] {
        all.compactMap { if case .corruptionFound(let report) = $0 { report } else { nil } }
    }
    var tornTails: Int {
        all.filter { if case .tornTailTruncated = $0 { true } else { false } }.count
    }
}

func configuration(
    _ durability: DurabilityPolicy = .groupCommit,
    events: EventCollector? = nil,
    _ change: (inout SpoolConfiguration) -> Void = { _ in }
) -> SpoolConfiguration {
    var configuration = SpoolConfiguration()
    configuration.durability = durability
    configuration.onEvent = events?.handler
    change(&configuration)
    return configuration
}

func payload(_ i: Int, size: Int? = nil) -> [UInt8] {
    let text = Array("message-\(i)".utf8)
    guard let size else { return text }
    return Array((text + [UInt8](repeating: UInt8(ascii: "."), count: max(0, size - text.count))).prefix(size))
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Reads every pending record of a log.
func allPending(_ log: OutboundLog) throws -> [SpoolRecord] {
    var records: [SpoolRecord] = []
    var next: UInt64 = 0
    while true {
        let batch = try log.readPending(from: next, limit: 1000)
        guard let last = batch.last else { return records }
        records += batch
        next = last.sequenceNumber + 1
    }
}


/// An atomic counter that closures can share.
final class AtomicBox: Sendable {
    private let value = Atomic<UInt64>(0)
    func get() -> UInt64 { value.load(ordering: .sequentiallyConsistent) }
    func set(_ v: UInt64) { value.store(v, ordering: .sequentiallyConsistent) }
    func add(_ v: UInt64) { value.add(v, ordering: .sequentiallyConsistent) }
}
