#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Ports handed out in this process so far: never the same one twice.
private let handedOutPorts = Mutex<Set<Int>>([])

/// A TCP port on 127.0.0.1 that nobody listens on right now, and that this process has not
/// handed out before.
///
/// Taken below the kernel's ephemeral range (32768 and up): a port from `bind(0)` comes
/// from that range, and while a test holds it unbound (a peer or program that starts
/// later), any outgoing connection (nodes retry theirs all the time) may take it as its
/// source port, and the later bind fails.
public func freeLoopbackPort() -> Int {
    while true {
        let port = Int.random(in: 20_000..<32_000)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }), canBindLoopback(port) else { continue }
        return port
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
public func isListening(_ port: Int) -> Bool {
    withLoopbackSocket(port) { fd, address, length in connect(fd, address, length) == 0 }
}

private func canBindLoopback(_ port: Int) -> Bool {
    withLoopbackSocket(port) { fd, address, length in bind(fd, address, length) == 0 }
}

/// Calls `body` with a new TCP socket and the address 127.0.0.1:`port`; closes the socket.
private func withLoopbackSocket(_ port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
