import Courier
import CourierExampleSupport
import Synchronization

/// A one-line progress display on standard error, drawn only when it is a terminal.
final class Progress: Sendable {
    private struct State {
        var spooled = 0
        var waiting = false
        var task: Task<Void, Never>?
    }

    private let state = Mutex(State())
    private let enabled: Bool
    private let total: Int?
    private let node: Node
    private let peer: String

    init(enabled: Bool, total: Int?, node: Node, peer: String) {
        self.enabled = enabled
        self.total = total
        self.node = node
        self.peer = peer
        guard enabled else { return }
        let task = Task { [self] in
            while !Task.isCancelled {
                draw()
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        state.withLock { $0.task = task }
    }

    func spooled(_ count: Int) {
        guard enabled else { return }
        state.withLock { $0.spooled += count }
    }

    func waiting() {
        guard enabled else { return }
        state.withLock { $0.waiting = true }
    }

    /// Stops drawing and clears the line.
    func stop() async {
        guard enabled, let task = state.withLock({ $0.task }) else { return }
        task.cancel()
        await task.value
        OutputStream.standardError.write("\r\u{1B}[K")
    }

    private func draw() {
        let (spooled, waiting) = state.withLock { ($0.spooled, $0.waiting) }
        var line = "spooled \(spooled)" + (total.map { " of \($0)" } ?? "")
        if let statistics = node.statistics(for: peer) {
            line += waiting ? "; waiting for delivery:" : ";"
            line += " \(statistics.pending) pending, \(statistics.processed) processed"
            line += statistics.connected ? "" : " (peer \(peer) not connected)"
        }
        OutputStream.standardError.write("\r\u{1B}[K" + line)
    }
}
