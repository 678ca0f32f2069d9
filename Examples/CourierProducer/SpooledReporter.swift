import Courier
import CourierExampleSupport
import Synchronization

/// Reports the producer's messages once they are stored, in order: prints them with
/// `--print-spooled` (each line only after its message is durable) and counts them for the
/// progress line. It runs beside the sending loop, so the loop never waits for a sync.
final class SpooledReporter: Sendable {
    private struct Chunk: Sendable {
        var payloads: [[UInt8]]
        var receipts: [PendingReceipt]
    }

    private let continuation: AsyncStream<Chunk>.Continuation
    private let task: Task<(any Error)?, Never>
    private let failed = FailureBox()

    init(printing: Bool, progress: Progress) {
        let (stream, continuation) = AsyncStream<Chunk>.makeStream()
        self.continuation = continuation
        let failed = self.failed
        task = Task {
            for await chunk in stream {
                // Stored in order: the last of a chunk stored means all of it is. If it
                // failed, the chunk's stored prefix is still reported, and nothing after.
                var stored = chunk.payloads.count
                var failure: (any Error)?
                do {
                    _ = try await chunk.receipts[chunk.receipts.count - 1].stored()
                } catch {
                    failure = error  // the sending loop learns it from the publisher
                    stored = 0
                    for receipt in chunk.receipts {
                        guard (try? await receipt.stored()) != nil else { break }
                        stored += 1
                    }
                }
                if printing {
                    var output: [UInt8] = []
                    output.reserveCapacity(chunk.payloads.reduce(0) { $0 + $1.count + 1 })
                    for payload in chunk.payloads.prefix(stored) {
                        output += payload
                        output.append(UInt8(ascii: "\n"))
                    }
                    guard OutputStream.standardOutput.write(output) else {
                        let error = OutputClosed()
                        failed.value.withLock { $0 = error }
                        return error
                    }
                }
                progress.spooled(stored)
                if let failure { return failure }
            }
            return nil
        }
    }

    /// A failure that should stop the sending loop (standard output closed).
    var failure: (any Error)? { failed.value.withLock { $0 } }

    /// Reports `payloads` once they are stored (`receipts`: theirs, in order).
    func add(_ payloads: [[UInt8]], receipts: [PendingReceipt]) {
        guard !receipts.isEmpty else { return }
        continuation.yield(Chunk(payloads: payloads, receipts: receipts))
    }

    /// Waits until everything added is reported (or reporting failed), and returns the failure.
    func finish() async -> (any Error)? {
        continuation.finish()
        return await task.value
    }
}

private final class FailureBox: Sendable {
    let value = Mutex<(any Error)?>(nil)
}
