import Foundation
import Synchronization
import ZeroMQ

/// A loopback TCP relay that forwards one connection at a time to `target` and keeps every
/// byte that went through, so a test can search the wire for plain text.
final class TCPRelay: Sendable {
    let endpoint: String
    private let listener: Int32
    private let captured = Mutex<[UInt8]>([])
    private let stopped = Mutex(false)

    init(forwardingTo target: String) throws {
        let port = UInt16(target.split(separator: ":").last.flatMap { UInt16($0) } ?? 0)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(fd, raw, length) == 0, getsockname(fd, raw, &length) == 0 else { throw RelayError() }
            }
        }
        listen(fd, 8)
        listener = fd
        endpoint = "tcp://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        let listener = fd
        try DedicatedThread.start(name: "tcp-relay") { [self] in
            while !stopped.withLock({ $0 }) {
                var poll = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard Glibc.poll(&poll, 1, 50) > 0 else { continue }
                let client = accept(listener, nil, nil)
                guard client >= 0 else { continue }
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var destination = Self.loopback(port: port)
                let connected = withUnsafePointer(to: &destination) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                if connected == 0 { pump(client, server) }
                close(client)
                close(server)
            }
            close(listener)
        }
    }

    /// Everything the relay has seen, both directions.
    var bytes: [UInt8] { captured.withLock { $0 } }

    func contains(_ needle: [UInt8]) -> Bool {
        let haystack = bytes
        guard needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return true }
        }
        return false
    }

    func stop() { stopped.withLock { $0 = true } }

    private func pump(_ a: Int32, _ b: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !stopped.withLock({ $0 }) {
            var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
            guard Glibc.poll(&fds, 2, 50) >= 0 else { return }
            for (index, entry) in fds.enumerated() where entry.revents != 0 {
                let from = index == 0 ? a : b
                let to = index == 0 ? b : a
                let count = read(from, &buffer, buffer.count)
                guard count > 0 else { return }
                captured.withLock { $0.append(contentsOf: buffer[0..<count]) }
                var sent = 0
                while sent < count {
                    let written = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, count - sent) }
                    guard written > 0 else { return }
                    sent += written
                }
            }
        }
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return address
    }

    struct RelayError: Error {}
}
