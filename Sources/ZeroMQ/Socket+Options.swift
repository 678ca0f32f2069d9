import CZeroMQ

extension Socket {
    // MARK: Setting

    /// Sets an integer option.
    public func set(_ option: SocketOption<Int32>, _ value: Int32) throws(ZeroMQError) {
        var raw = value
        try setRaw(option.code, option.description, &raw, MemoryLayout<Int32>.size)
    }

    /// Sets a 64-bit integer option.
    public func set(_ option: SocketOption<Int64>, _ value: Int64) throws(ZeroMQError) {
        var raw = value
        try setRaw(option.code, option.description, &raw, MemoryLayout<Int64>.size)
    }

    /// Sets a boolean option.
    public func set(_ option: SocketOption<Bool>, _ value: Bool) throws(ZeroMQError) {
        var raw: Int32 = value ? 1 : 0
        try setRaw(option.code, option.description, &raw, MemoryLayout<Int32>.size)
    }

    /// Sets a time option. libzmq stores whole milliseconds (whole seconds for TCP keep-alive).
    public func set(_ option: SocketOption<Duration>, _ value: Duration) throws(ZeroMQError) {
        var raw = try Self.timeValue(value, option)
        try setRaw(option.code, option.description, &raw, MemoryLayout<Int32>.size)
    }

    /// Sets a timeout; `nil` means wait forever.
    public func set(_ option: SocketOption<Duration?>, _ value: Duration?) throws(ZeroMQError) {
        var raw: Int32 = -1
        if let value {
            raw = try Self.timeValue(value, SocketOption<Duration>(option.description, option.code))
        }
        try setRaw(option.code, option.description, &raw, MemoryLayout<Int32>.size)
    }

    /// Sets the linger policy.
    public func set(_ option: SocketOption<Linger>, _ value: Linger) throws(ZeroMQError) {
        var raw = value.milliseconds
        try setRaw(option.code, option.description, &raw, MemoryLayout<Int32>.size)
    }

    /// Sets a binary option such as the routing id.
    public func set(_ option: SocketOption<[UInt8]>, _ value: [UInt8]) throws(ZeroMQError) {
        try withHandle("zmq_setsockopt") { handle throws(ZeroMQError) in
            let result = value.withUnsafeBytes { zmq_setsockopt(handle, option.code, $0.baseAddress, $0.count) }
            if result != 0 { throw .last("zmq_setsockopt", subject: option.description) }
        }
    }

    /// Sets a text option.
    public func set(_ option: SocketOption<String>, _ value: String) throws(ZeroMQError) {
        try set(SocketOption<[UInt8]>(option.description, option.code), Array(value.utf8))
    }

    /// Sets a CurveZMQ key.
    public func set(_ option: SocketOption<CurveKey>, _ value: CurveKey) throws(ZeroMQError) {
        try set(SocketOption<[UInt8]>(option.description, option.code), value.bytes)
    }

    // MARK: Getting

    /// Reads an integer option.
    public func get(_ option: SocketOption<Int32>) throws(ZeroMQError) -> Int32 {
        try getInt32(option.code, option.description)
    }

    /// Reads a 64-bit integer option.
    public func get(_ option: SocketOption<Int64>) throws(ZeroMQError) -> Int64 {
        var raw: Int64 = 0
        var size = MemoryLayout<Int64>.size
        try getRaw(option.code, option.description, &raw, &size)
        return raw
    }

    /// Reads a boolean option.
    public func get(_ option: SocketOption<Bool>) throws(ZeroMQError) -> Bool {
        try getInt32(option.code, option.description) == 1
    }

    /// Reads a time option.
    public func get(_ option: SocketOption<Duration>) throws(ZeroMQError) -> Duration {
        let raw = try getInt32(option.code, option.description)
        return option.secondsUnit ? .seconds(raw) : .milliseconds(raw)
    }

    /// Reads a timeout; `nil` means wait forever.
    public func get(_ option: SocketOption<Duration?>) throws(ZeroMQError) -> Duration? {
        let raw = try getInt32(option.code, option.description)
        return raw < 0 ? nil : .milliseconds(raw)
    }

    /// Reads the linger policy.
    public func get(_ option: SocketOption<Linger>) throws(ZeroMQError) -> Linger {
        Linger(milliseconds: try getInt32(option.code, option.description))
    }

    /// Reads a binary option.
    public func get(_ option: SocketOption<[UInt8]>) throws(ZeroMQError) -> [UInt8] {
        try getBytes(option.code, option.description, capacity: 1024)
    }

    /// Reads a text option.
    public func get(_ option: SocketOption<String>) throws(ZeroMQError) -> String {
        var bytes = try get(SocketOption<[UInt8]>(option.description, option.code))
        while bytes.last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads a CurveZMQ key.
    public func get(_ option: SocketOption<CurveKey>) throws(ZeroMQError) -> CurveKey {
        try CurveKey(bytes: getBytes(option.code, option.description, capacity: CurveKey.byteCount))
    }

    // MARK: Plumbing

    private static func timeValue(_ value: Duration, _ option: SocketOption<Duration>) throws(ZeroMQError) -> Int32 {
        let amount = option.secondsUnit ? value.components.seconds : value.wholeMilliseconds
        guard amount >= 0, amount <= Int64(Int32.max) else {
            throw .usage(.invalidArgument, "\(value) is out of range for this option", "zmq_setsockopt",
                         subject: option.description)
        }
        return Int32(amount)
    }

    private func setRaw(_ code: Int32, _ name: String, _ value: UnsafeRawPointer?, _ size: Int) throws(ZeroMQError) {
        try withHandle("zmq_setsockopt") { handle throws(ZeroMQError) in
            if zmq_setsockopt(handle, code, value, size) != 0 { throw .last("zmq_setsockopt", subject: name) }
        }
    }

    private func getRaw(_ code: Int32, _ name: String, _ value: UnsafeMutableRawPointer?,
                        _ size: inout Int) throws(ZeroMQError) {
        try withHandle("zmq_getsockopt") { handle throws(ZeroMQError) in
            if zmq_getsockopt(handle, code, value, &size) != 0 { throw .last("zmq_getsockopt", subject: name) }
        }
    }

    private func getBytes(_ code: Int32, _ name: String, capacity: Int) throws(ZeroMQError) -> [UInt8] {
        try withHandle("zmq_getsockopt") { handle throws(ZeroMQError) in
            var size = capacity
            var result: Int32 = 0
            let bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                buffer.initialize(repeating: 0)
                result = zmq_getsockopt(handle, code, buffer.baseAddress, &size)
                count = result == 0 ? min(size, capacity) : 0
            }
            if result != 0 { throw .last("zmq_getsockopt", subject: name) }
            return bytes
        }
    }

    private func getInt32(_ code: Int32, _ name: String) throws(ZeroMQError) -> Int32 {
        var raw: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try getRaw(code, name, &raw, &size)
        return raw
    }
}
