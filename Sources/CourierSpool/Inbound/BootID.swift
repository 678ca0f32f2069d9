import SystemPackage

/// The running kernel's boot id (`/proc/sys/kernel/random/boot_id`, a random UUID chosen at
/// each boot), as 16 bytes, or `nil` where there is none.
///
/// The inbound journal stamps every snapshot with it: a snapshot written during the current
/// boot was in the page cache whatever happened to the process since, so everything written
/// after it is there too; one from an earlier boot may have lost later, unsynced writes to
/// an operating-system crash or power loss.
enum BootID {
    static let current: [UInt8]? = read()

    static func read(path: FilePath = "/proc/sys/kernel/random/boot_id") -> [UInt8]? {
        guard let fd = try? FileDescriptor.open(path, .readOnly) else { return nil }
        defer { try? fd.close() }
        var buffer = [UInt8](repeating: 0, count: 64)
        guard let count = try? buffer.withUnsafeMutableBytes({ try fd.read(into: $0) }) else { return nil }
        return parse(Array(buffer.prefix(count)))
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (a newline may follow) into 16 bytes.
    static func parse(_ text: [UInt8]) -> [UInt8]? {
        var digits: [UInt8] = []
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digits.append(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digits.append(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: "-"), UInt8(ascii: "\n"): continue
            default: return nil
            }
        }
        guard digits.count == 32 else { return nil }
        let bytes = stride(from: 0, to: 32, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
        return bytes.allSatisfy({ $0 == 0 }) ? nil : bytes
    }
}
