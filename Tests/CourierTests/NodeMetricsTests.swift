import Foundation
import MetricsTestKit
import Testing
import TestSupport
@testable import Courier

@Suite("Metrics: what each counter counts, on both sides", .timeLimit(.minutes(2)))
struct NodeMetricsTests {
    @Test("sent counts first transmissions, the outcomes split processed from rejected, the receiver counts per sender")
    func countersOnBothSides() async throws {
        let metrics = testMetrics  // bootstrapped before the nodes make their metrics
        let directory = TemporaryDirectory("metrics")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await Node.start(configuration(id: "metrics-r", directory: directory.sub("r"), listen: [endpoint]))
        let sender = try await Node.start(configuration(id: "metrics-s", directory: directory.sub("s"),
                                                        peers: [PeerConfiguration(id: "metrics-r", endpoints: [endpoint])]))
        let collector = Task {
            await receive(10, from: receiver) { message in
                if message.string?.hasPrefix("bad") == true { message.reject(reason: "bad") } else { message.acknowledge() }
            }
        }
        let receipts = try await sender.send(batch: (1...10).map { Array(($0 <= 3 ? "bad \($0)" : "good \($0)").utf8) }, to: "metrics-r")
        _ = try await receipts.outcomes()
        _ = try await within(.seconds(20), "ten delivered") { await collector.value }

        let peer = [("peer", "metrics-r")]
        #expect(try metrics.expectCounter("courier_messages_sent_total", peer).totalValue == 10)
        #expect(try metrics.expectCounter("courier_messages_processed_total", peer).totalValue == 7)
        #expect(try metrics.expectCounter("courier_messages_rejected_total", peer).totalValue == 3)
        #expect(try metrics.expectTimer(CourierMetrics.roundTripLabel, peer).values.count >= 1)

        let from = [("sender", "metrics-s")]
        #expect(try metrics.expectCounter("courier_inbound_delivered_total", from).totalValue == 10)
        #expect(try metrics.expectCounter("courier_inbound_acknowledged_total", from).totalValue == 7)
        #expect(try metrics.expectCounter("courier_inbound_rejected_total", from).totalValue == 3)
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("the round-trip buckets resolve a loopback's microseconds up to seconds, ascending")
    func roundTripBuckets() {
        let buckets = CourierMetrics.roundTripBuckets
        #expect(buckets.first == .microseconds(50))
        #expect(buckets.last == .seconds(5))
        #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 })
    }
}
