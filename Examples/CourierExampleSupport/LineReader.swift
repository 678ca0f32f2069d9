import Foundation
import Synchronization

/// Lines of a file descriptor (standard input), read on a thread of their own so that a
/// blocking `read` never holds a thread of Swift's cooperative pool.
///
/// Lines are handed out as soon as they are read, several at once when they arrive faster
/// than they are taken; at most `limit` wait in memory (the reading thread then pauses).
public final class LineReader: Sendable {
    private struct State {
        var lines: [[UInt8]] = []
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
        var readerPaused = false
    }

    private let state = Mutex(State())
    private let room = DispatchSemaphore(value: 0)
    private let descriptor: Int32
    private let limit: Int

    /// Starts reading `descriptor` (default: standard input) at once.
    public init(descriptor: Int32 = 0, limit: Int = 4096) {
        self.descriptor = descriptor
        self.limit = limit
        let thread = Thread { [self] in readLoop() }
        thread.name = "stdin-reader"
        thread.start()
    }

    /// The lines read since the last call (at most `maximum`, at least one), waiting for one
    /// if none is ready; nil at end of input. Call it from one task at a time.
    public func next(maximum: Int) async -> [[UInt8]]? {
        while true {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state in
                    if state.lines.isEmpty && !state.finished {
                        state.waiter = continuation
                        return false
                    }
                    return true
                }
                if ready { continuation.resume() }
            }
            let (lines, finished, wake) = state.withLock { state in
                let count = min(maximum, state.lines.count)
                let taken = Array(state.lines.prefix(count))
                state.lines.removeFirst(count)
                let wake = state.readerPaused && state.lines.count < limit
                if wake { state.readerPaused = false }
                return (taken, state.finished, wake)
            }
            if wake { room.signal() }
            if !lines.isEmpty { return lines }
            if finished { return nil }
        }
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var partial: [UInt8] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                if !partial.isEmpty { deliver([partial]) }
                finish()
                return
            }
            var lines: [[UInt8]] = []
            var start = 0
            for index in 0..<count where buffer[index] == UInt8(ascii: "\n") {
                var line = partial + buffer[start..<index]
                partial.removeAll(keepingCapacity: true)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                lines.append(line)
                start = index + 1
            }
            partial += buffer[start..<count]
            if !lines.isEmpty { deliver(lines) }
        }
    }

    private func deliver(_ lines: [[UInt8]]) {
        let (waiter, full) = state.withLock { state in
            state.lines += lines
            let waiter = state.waiter
            state.waiter = nil
            let full = state.lines.count >= limit
            if full { state.readerPaused = true }
            return (waiter, full)
        }
        waiter?.resume()
        if full { room.wait() }
    }

    private func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
