import Courier
import CourierExampleSupport
import Synchronization

/// Reports the producer's messages once they are stored, in order: prints them with
/// `--print-spooled` (each line only after its message is durable) and counts them for the
/// progress line. It runs beside the sending loop, so the loop never waits for a sync.
final class SpooledReporter: Sendable {
    private struct Chunk: Sendable {
        var payloads: [[UInt8]]
        var last: PendingReceipt
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
                do {
                    // Stored in order: the last of a chunk stored means all of it is.
                    _ = try await chunk.last.stored()
                } catch {
                    return error  // the sending loop learns it from the publisher
                }
                if printing {
                    var output: [UInt8] = []
                    output.reserveCapacity(chunk.payloads.reduce(0) { $0 + $1.count + 1 })
                    for payload in chunk.payloads {
                        output += payload
                        output.append(UInt8(ascii: "\n"))
                    }
                    guard OutputStream.standardOutput.write(output) else {
                        let error = OutputClosed()
                        failed.value.withLock { $0 = error }
                        return error
                    }
                }
                progress.spooled(chunk.payloads.count)
            }
            return nil
        }
    }

    /// A failure that should stop the sending loop (standard output closed).
    var failure: (any Error)? { failed.value.withLock { $0 } }

    /// Reports `payloads` once `last`, the receipt of the last of them, is stored.
    func add(_ payloads: [[UInt8]], last: PendingReceipt) {
        continuation.yield(Chunk(payloads: payloads, last: last))
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
