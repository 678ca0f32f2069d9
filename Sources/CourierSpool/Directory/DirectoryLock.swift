#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import SystemPackage

/// The exclusive `flock` on a data directory's `LOCK` file, which holds the holder's pid.
/// Held for as long as this object lives; a second opener fails at once.
final class DirectoryLock: Sendable {
    let path: FilePath
    private let fd: Mutex<FileDescriptor?>

    init(path: FilePath) throws(SpoolError) {
        self.path = path
        let fd = try FileOps.openForWriting(path, create: true)
        if flock(fd.rawValue, LOCK_EX | LOCK_NB) != 0 {
            let error = Errno(rawValue: errno)
            let holder = (try? fd.readBytes(at: 0, count: 32)).flatMap { Int32(String(decoding: $0, as: UTF8.self).trimmingCharacters()) }
            try? fd.close()
            if error == .wouldBlock || error == .resourceTemporarilyUnavailable {
                throw SpoolError(
                    code: .locked,
                    message: "the data directory is in use by another process" + (holder.map { " (pid \($0))" } ?? "")
                        + "; stop it, or use another data directory",
                    path: path, systemCall: "flock", errno: error, holderPID: holder
                )
            }
            throw SpoolError.system("flock", error, path: path, doing: "locking the data directory")
        }
        do {
            try fd.resize(to: 0)
            _ = try fd.writeAll(toAbsoluteOffset: 0, Array("\(getpid())\n".utf8))
        } catch {
            try? fd.close()
            throw SpoolError.from(error, call: "write", path: path, doing: "recording the pid in the lock file")
        }
        self.fd = Mutex(fd)
    }

    /// Releases the lock; idempotent.
    func release() {
        fd.withLock { fd in
            guard let held = fd else { return }
            _ = flock(held.rawValue, LOCK_UN)
            try? held.close()
            fd = nil
        }
    }

    deinit { release() }
}

extension String {
    func trimmingCharacters() -> String {
        String(unicodeScalars.filter { !$0.properties.isWhitespace })
    }
}
