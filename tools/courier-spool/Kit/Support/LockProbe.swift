import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a node holds a data directory's lock, found out without taking it: `LOCK` keeps
/// the last holder's pid after the node stops, so the pid alone does not tell. On Linux the
/// kernel's table of `flock` locks (`/proc/locks`) says whether the file is locked and by
/// whom; elsewhere, whether the recorded process is alive.
enum LockState: Equatable, Sendable {
    /// No `LOCK` file: no node has opened the directory.
    case none
    /// A node holds the lock (its pid, when known).
    case held(pid: Int32?)
    /// Nobody holds it; `lastPID` is the last holder recorded in the file.
    case free(lastPID: Int32?)

    /// Whether a node runs on the directory.
    var isHeld: Bool { if case .held = self { true } else { false } }

    static func probe(dataDirectory: FilePath, recordedPID: Int32?) -> LockState {
        let path = dataDirectory.appending("LOCK")
        var info = stat()
        guard path.withPlatformString({ stat($0, &info) }) == 0 else { return .none }
        if let locks = readProcLocks() {
            let device = UInt64(info.st_dev)
            let major = (device >> 8) & 0xFFF | (device >> 32) & ~UInt64(0xFFF)
            let minor = device & 0xFF | (device >> 12) & ~UInt64(0xFF)
            if let holder = flockHolder(in: locks, major: major, minor: minor, inode: UInt64(info.st_ino)) {
                return .held(pid: holder > 0 ? holder : recordedPID)
            }
            return .free(lastPID: recordedPID)
        }
        guard let recordedPID, recordedPID > 0 else { return .free(lastPID: nil) }
        return kill(recordedPID, 0) == 0 || errno == EPERM ? .held(pid: recordedPID) : .free(lastPID: recordedPID)
    }

    /// The pid holding an `flock` on the file (major, minor, inode) in the text of
    /// `/proc/locks`, whose lines read `1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF`
    /// (device numbers in hexadecimal). Waiters (`1: -> FLOCK …`) are not holders.
    static func flockHolder(in text: String, major: UInt64, minor: UInt64, inode: UInt64) -> Int32? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK" else { continue }
            let file = fields[5].split(separator: ":")
            guard file.count == 3, UInt64(file[0], radix: 16) == major, UInt64(file[1], radix: 16) == minor,
                  UInt64(file[2]) == inode else { continue }
            return Int32(fields[4]) ?? 0
        }
        return nil
    }

    private static func readProcLocks() -> String? {
        #if os(Linux)
        guard let fd = try? FileDescriptor.open("/proc/locks", .readOnly) else { return nil }
        defer { try? fd.close() }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            guard let count = try? buffer.withUnsafeMutableBytes({ try fd.read(into: $0) }) else { return nil }
            if count == 0 { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
        #else
        return nil
        #endif
    }
}
