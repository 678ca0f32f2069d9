import Foundation
import Logging
import ServiceLifecycle
import Testing
@testable import Courier

/// A sibling service that fails after `delay`.
private struct FailingService: Service {
    struct Failure: Error, Equatable { var what: String }
    var delay: Duration
    func run() async throws {
        try await Task.sleep(for: delay)
        throw Failure(what: "the sibling failed")
    }
}

private func quietLogger() -> Logger {
    var logger = Logger(label: "service-group")
    logger.logLevel = .critical
    return logger
}

@Suite("A node in a ServiceGroup", .timeLimit(.minutes(2)))
struct NodeServiceTests {
    @Test("a failing sibling ends the group in seconds, and the group rethrows the sibling's error")
    func failingSibling() async throws {
        let directory = TemporaryDirectory("sibling")
        defer { directory.cleanup() }
        // A peer that is never there: the node has acknowledgements to wait for, and a long
        // grace period that cancellation must not wait out.
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [freeLoopbackEndpoint()])])
        settings.logger.logLevel = .critical
        let node = try await Node.start(settings, shutdownGracePeriod: .seconds(60))
        _ = try await node.send(Array("kept".utf8), to: "r")
        let group = ServiceGroup(configuration: .init(services: [
            .init(service: node), .init(service: FailingService(delay: .milliseconds(100))),
        ], logger: quietLogger()))
        let started = ContinuousClock.now
        let failure = try await within(.seconds(10), "the group ends") {
            do {
                try await group.run()
                return nil as FailingService.Failure?
            } catch let failure as FailingService.Failure {
                return failure
            }
        }
        #expect(failure == FailingService.Failure(what: "the sibling failed"))
        #expect(ContinuousClock.now - started < .seconds(5))
        let refused = await #expect(throws: CourierError.self) { _ = try await node.send([1], to: "r") }
        #expect(refused?.code == .shutDown)

        // Nothing accepted was lost: the next start still holds the message.
        let again = try await Node.start(settings)
        try await within(.seconds(5), "the restarted node reports the message pending") {
            while again.statistics(for: "r")?.pending != 1 { try await Task.sleep(for: .milliseconds(10)) }
        }
        await again.shutdown(timeout: .zero)
    }

    @Test("cancelling the task that runs the node stops it promptly")
    func cancellation() async throws {
        let directory = TemporaryDirectory("cancel")
        defer { directory.cleanup() }
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [freeLoopbackEndpoint()])])
        settings.logger.logLevel = .critical
        let node = try await Node.start(settings, shutdownGracePeriod: .seconds(60))
        _ = try await node.send(Array("pending".utf8), to: "r")
        let running = Task { try await node.run() }
        try await Task.sleep(for: .milliseconds(50))
        running.cancel()
        try await within(.seconds(5), "run() returns after cancellation") { try await running.value }
        let refused = await #expect(throws: CourierError.self) { _ = try await node.send([1], to: "r") }
        #expect(refused?.code == .shutDown)
    }

    @Test("a graceful shutdown that overruns the group's limit is cut short by cancellation, without a crash")
    func overrunningShutdown() async throws {
        let directory = TemporaryDirectory("overrun")
        defer { directory.cleanup() }
        var settings = configuration(id: "s", directory: directory.sub("s"), peers: [PeerConfiguration(id: "r", endpoints: [freeLoopbackEndpoint()])])
        settings.logger.logLevel = .critical
        let node = try await Node.start(settings, shutdownGracePeriod: .seconds(60))
        _ = try await node.send(Array("pending".utf8), to: "r")
        var groupConfiguration = ServiceGroupConfiguration(services: [.init(service: node)], logger: quietLogger())
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(200)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(50))
        await group.triggerGracefulShutdown()
        let started = ContinuousClock.now
        _ = try await within(.seconds(10), "the group ends") { try? await running.value }
        #expect(ContinuousClock.now - started < .seconds(4))
    }

    @Test("a graceful shutdown waits for outstanding acknowledgements: the receiver has everything once the group ends")
    func gracefulDrain() async throws {
        let directory = TemporaryDirectory("drain")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await startReceiver(in: directory, listening: endpoint)
        let collector = Task { await receive(500, from: receiver) }
        let sender = try await startSender(in: directory, to: endpoint)
        let group = ServiceGroup(services: [sender], logger: quietLogger())
        let running = Task { try await group.run() }
        _ = try await sender.send(batch: (1...500).map { Array("m\($0)".utf8) }, to: "r")
        await group.triggerGracefulShutdown()
        try await within(.seconds(20), "the group ends") { try await running.value }
        #expect(sender.statistics(for: "r")?.pending ?? 0 == 0)
        let received = try await within(.seconds(5), "all 500 delivered") { await collector.value }
        #expect(received.count == 500)
        await receiver.shutdown()
    }
}
