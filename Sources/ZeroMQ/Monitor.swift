import CZeroMQ
import Synchronization

private let monitorCounter = Atomic<Int>(0)

/// Receives a socket's connection events (connected, disconnected, handshake results…).
///
/// A monitor is a PAIR socket connected to libzmq's monitor of the watched socket, so it
/// follows the same rule: it belongs to one thread. Register ``socket`` with a ``Poller``
/// to wait for events together with the watched socket's messages.
public final class Monitor {
    /// The PAIR socket the events arrive on.
    public let socket: Socket

    init(watching target: Socket) throws(ZeroMQError) {
        let number = monitorCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let address = "inproc://courier-monitor-\(number)"
        try target.withHandle("zmq_socket_monitor") { handle throws(ZeroMQError) in
            if zmq_socket_monitor(handle, address, ZMQ_EVENT_ALL) != 0 {
                throw .last("zmq_socket_monitor", subject: address)
            }
        }
        socket = try Socket(.pair, context: target.context)
        try socket.connect(address)
    }

    /// Waits for the next event (up to the socket's receive timeout).
    public func receive() throws(ZeroMQError) -> MonitorEvent {
        while true {
            if let event = MonitorEvent(frames: try socket.receive().frames) { return event }
        }
    }

    /// The next event if one is waiting, else `nil`.
    public func tryReceive() throws(ZeroMQError) -> MonitorEvent? {
        while let message = try socket.tryReceive() {
            if let event = MonitorEvent(frames: message.frames) { return event }
        }
        return nil
    }

    /// Closes the monitor's socket.
    public func close() { socket.close() }
}

extension Socket {
    /// Starts reporting this socket's connection events to a new ``Monitor``.
    ///
    /// Create the monitor on the thread that will read it, before connecting or binding if
    /// the first events matter. One monitor per socket.
    public func monitor() throws(ZeroMQError) -> Monitor {
        try Monitor(watching: self)
    }
}
