import CourierChecksum
import Foundation
import Logging
import Testing
import TestSupport
import ZeroMQ
@testable import Courier

#if canImport(Glibc)
import Glibc
#endif

/// Issue 20's attacks on a running courier-consumer. For each: the consumer survives, a
/// legitimate producer's 500 messages arrive once each while the attack runs, and the
/// consumer's resident memory stays within 64 MiB of its start (docs/RELIABILITY.md,
/// "Hostile peers").
@Suite("Hostile peers against courier-consumer", .serialized, .timeLimit(.minutes(4)))
struct HostilePeerTests {
    /// What one attack run measured.
    struct Run {
        var producerSeconds: Double
        var rssGrowthMiB: Double
        var consumerErrors: String
    }

    /// Starts a consumer, runs `attack` against it on a thread of its own while producer
    /// `producer` sends 500 messages with --wait (once `ready` holds of the consumer's pid, if
    /// given), then checks survival, delivery and memory.
    func underAttack(_ name: String, producer: String = "P", softDescriptorLimit: Int? = nil,
                     startProducerWhen ready: (@Sendable (_ consumer: Int32) -> Bool)? = nil,
                     attack: @escaping @Sendable (_ endpoint: String, _ port: Int) throws -> Void) async throws -> Run {
        let work = Workspace(name)
        let port = freeLoopbackPort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let consumer = try Child("courier-consumer", ["--id", "C", "--data-dir", work.file("c"), "--listen", endpoint],
                                 stdout: work.file("c.out"), stderr: work.file("c.err"), softDescriptorLimit: softDescriptorLimit)
        try await poll(within: .seconds(20), "the consumer to listen") { isListening(port) }
        let rssAtStart = try residentMiB(consumer.pid)
        let sampler = Task {
            var peak = 0.0
            while !Task.isCancelled, let rss = try? residentMiB(consumer.pid) {
                peak = max(peak, rss)
                try? await Task.sleep(for: .milliseconds(50))
            }
            return peak
        }
        let attacking = Task { try await DedicatedThread.run(name: "attacker") { try attack(endpoint, port) } }
        if let ready {
            try await poll(within: .seconds(20), "the attack to take hold") { ready(consumer.pid) }
        }
        let started = ContinuousClock.now
        let sender = try Child("courier-producer", ["--id", producer, "--data-dir", work.file(producer), "--peer", "C=\(endpoint)",
                                                    "--count", "500", "--size", "100", "--wait"],
                               stdout: work.file("p.out"), stderr: work.file("p.err"))
        let producerExit = try await sender.exitCode(within: .seconds(120))
        let producerSeconds = (ContinuousClock.now - started) / .seconds(1)
        try await attacking.value
        sampler.cancel()
        let peak = await sampler.value
        #expect(producerExit == 0, "producer: \(work.read("p.err"))")
        #expect(consumer.isRunning, "the consumer died: \(work.read("c.err").suffix(2000))")
        consumer.signal(SIGTERM)
        #expect(try await consumer.exitCode(within: .seconds(20)) == 0, "consumer: \(work.read("c.err").suffix(2000))")
        let delivered = try parseDelivered(work.read("c.out")).filter { $0.from == producer }
        #expect(delivered.map(\.seq) == Array(1...500), "\(producer)'s messages, once each, in order")
        #expect(delivered.allSatisfy { !$0.redelivered })
        #expect(peak - rssAtStart < 64, "RSS grew from \(rssAtStart) MiB to \(peak) MiB")
        let run = Run(producerSeconds: producerSeconds, rssGrowthMiB: peak - rssAtStart, consumerErrors: work.read("c.err"))
        if producerExit == 0 && !consumer.isRunning { work.remove() }
        return run
    }

    @Test("handover abuse: a displaced connection with replies queued sends and closes; an impostor reuses the producer's id")
    func handoverAbuse() async throws {
        _ = try await underAttack("handover") { endpoint, _ in
            let context = try Context()
            func dealer(_ id: String) throws -> Socket {
                let socket = try Socket(.dealer, context: context)
                try socket.set(.routingID, Array(id.utf8))
                try socket.set(.receiveHighWaterMark, 1)
                try socket.connect(endpoint)
                return socket
            }
            let hello = WireEncoder.encode(.hello(.init(stream: 5, firstUnacknowledged: 1, nextSequence: 1, nonce: 1)), version: 2)
            for round in 1...3 {
                // M asks and never reads: WELCOMEs pile up for it. A second M connects, then
                // the first sends one frame and closes (libzmq 4.3.4 aborted on this with
                // handover on and heartbeats running).
                let first = try dealer("M")
                for _ in 0..<2000 { _ = try first.trySend([hello]) }
                Thread.sleep(forTimeInterval: 0.3)
                let second = try dealer("M")
                _ = try second.trySend([hello])
                Thread.sleep(forTimeInterval: 0.2)
                _ = try first.trySend([hello])
                first.close(linger: .discard)
                // An impostor under the real producer's id, asking and sending.
                let impostor = try dealer("P")
                _ = try impostor.trySend([WireEncoder.encode(.hello(.init(stream: UInt64(round), firstUnacknowledged: 1, nextSequence: 2, nonce: 1)), version: 2)])
                Thread.sleep(forTimeInterval: 0.3)
                impostor.close(linger: .discard)
                second.close(linger: .discard)
            }
            Thread.sleep(forTimeInterval: 3)   // the abort came about 2 s after the close
        }
    }

    @Test("sequence numbers near 2^64: refused; at the 2^62 limit: served")
    func boundaryNumbers() async throws {
        let run = try await underAttack("numbers") { endpoint, _ in
            let context = try Context()
            let socket = try Socket(.dealer, context: context)
            try socket.set(.routingID, Array("N".utf8))
            try socket.connect(endpoint)
            func data(_ sequence: UInt64) -> [UInt8] {
                var encoder = WireEncoder.data(stream: 9, version: 2)
                encoder.appendRecord(sequence: sequence, attempt: 1, isTombstone: false, expiry: 0, headers: [UInt8](), payload: Array("edge".utf8))
                return encoder.finish()
            }
            for first in [UInt64.max - 1, 1 << 63, Wire.maxSequence + 1] {
                let body: [UInt8] = [0x43, 0x52, 1, 1] + u64(9) + u64(first) + u64(first)
                try socket.send(Message([body + u32(CRC32C.checksum(body))]))
                try socket.send(Message([data(1)]))
            }
            try socket.send(Message([WireEncoder.encode(.hello(.init(stream: 9, firstUnacknowledged: Wire.maxSequence, nextSequence: Wire.maxSequence, nonce: 1)), version: 2)]))
            Thread.sleep(forTimeInterval: 0.5)
            try socket.send(Message([data(Wire.maxSequence)]))
            socket.close(linger: .upTo(.seconds(5)))
        }
        #expect(run.consumerErrors.contains("above the protocol's limit"))
    }

    @Test("a sender that opens streams forever, and a thousand ids with one stream each: memory stays flat")
    func streamFlood() async throws {
        let run = try await underAttack("streams") { endpoint, _ in
            let context = try Context()
            let socket = try Socket(.dealer, context: context)
            try socket.set(.routingID, Array("F".utf8))
            try socket.connect(endpoint)
            for stream in 1...20_000 as ClosedRange<UInt64> {
                try socket.send(Message([WireEncoder.encode(.hello(.init(stream: stream, firstUnacknowledged: 1, nextSequence: 1, nonce: 1)), version: 2)]))
            }
            socket.close(linger: .upTo(.seconds(10)))
            for id in 1...1000 {
                let other = try Socket(.dealer, context: context)
                try other.set(.routingID, Array("F-\(id)".utf8))
                try other.connect(endpoint)
                try other.send(Message([WireEncoder.encode(.hello(.init(stream: 1, firstUnacknowledged: 1, nextSequence: 1, nonce: 1)), version: 2)]))
                other.close(linger: .upTo(.seconds(2)))
            }
            Thread.sleep(forTimeInterval: 1)
        }
        #expect(run.rssGrowthMiB < 64)
    }

    @Test("a flood of refused frames: every one counted, a few log lines")
    func logFlood() async throws {
        let run = try await underAttack("log-flood") { endpoint, _ in
            let context = try Context()
            let socket = try Socket(.dealer, context: context)
            try socket.set(.routingID, Array("L".utf8))
            try socket.connect(endpoint)
            for index in 0..<20_000 {
                try socket.send(Message([[0x43, 0x52, 1, 3] + u64(UInt64(index)) + [0, 0, 0, 0]]))   // bad checksums
            }
            socket.close(linger: .upTo(.seconds(10)))
        }
        let lines = run.consumerErrors.split(separator: "\n").filter { $0.contains("refused a frame") }
        #expect(lines.count >= 1 && lines.count <= 5, "\(lines.count) log lines for 20,000 refused frames")
    }

    @Test("1,100 idle connections at a soft descriptor limit of 1,024: a producer's delivery time stays within twice normal")
    func connectionFlood() async throws {
        // This test process holds the 1,100 connections: raise its own limit as a node does.
        DescriptorLimit.raiseSoftLimit(logger: Logger(label: "hostile-peer-tests"))
        let normal = try await underAttack("flood-baseline", producer: "B", softDescriptorLimit: 1024) { _, _ in }
        // The producer starts once the consumer holds 1,000 descriptors: without raising its
        // limit it would have no more to accept with, and spin on EMFILE.
        let flooded = try await underAttack("flood", producer: "P", softDescriptorLimit: 1024,
                                            startProducerWhen: { descriptorCount($0) >= 1000 }) { _, port in
            let sockets = Locked<[Int32]>([])
            defer { for fd in sockets.withLock({ $0 }) { close(fd) } }
            // Sixteen threads keep connecting (blocking, 2 s timeout) until 1,100 are up.
            let end = ContinuousClock.now + .seconds(10)
            DispatchQueue.concurrentPerform(iterations: 16) { _ in
                while sockets.withLock({ $0.count }) < 1100, ContinuousClock.now < end {
                    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                    guard fd >= 0 else { return }
                    var timeout = timeval(tv_sec: 2, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    var address = sockaddr_in()
                    address.sin_family = sa_family_t(AF_INET)
                    address.sin_port = in_port_t(UInt16(port).bigEndian)
                    address.sin_addr.s_addr = inet_addr("127.0.0.1")
                    let connected = withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                    if connected == 0 { sockets.withLock { $0.append(fd) } } else { close(fd) }
                }
            }
            Thread.sleep(forTimeInterval: 6)   // idle: no ZMTP greeting, held while the producer runs
        }
        // Twice the normal time, with half a second for process start-up noise on a 2-core host.
        #expect(flooded.producerSeconds <= 2 * normal.producerSeconds + 0.5,
                "normal \(normal.producerSeconds) s, under the flood \(flooded.producerSeconds) s")
    }
}

private func u64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
private func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

/// Resident memory of process `pid`, in MiB (VmRSS in /proc).
func residentMiB(_ pid: Int32) throws -> Double {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
        throw DeadlineExceeded(description: "no VmRSS for \(pid)")
    }
    return kib / 1024
}

/// How many descriptors process `pid` has open.
func descriptorCount(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
}
