#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

extension FileDescriptor {
    /// Flushes the file's data (and the metadata needed to read it back, such as its size)
    /// to stable storage. The corresponding C function is `fdatasync` (`F_FULLFSYNC` on
    /// Darwin, where `fdatasync` is not a barrier).
    package func datasync() throws(Errno) {
        NoBlockingZone.check("fdatasync")
        while true {
            #if canImport(Darwin)
            let result = fcntl(rawValue, F_FULLFSYNC)
            #else
            let result = fdatasync(rawValue)
            #endif
            if result == 0 { return }
            let error = Errno(rawValue: errno)
            if error == .interrupted { continue }
            throw error
        }
    }

    /// Flushes the file's data and all its metadata. The corresponding C function is `fsync`.
    package func fullSync() throws(Errno) {
        NoBlockingZone.check("fsync")
        while true {
            if fsync(rawValue) == 0 { return }
            let error = Errno(rawValue: errno)
            if error == .interrupted { continue }
            throw error
        }
    }

    /// Reads up to `count` bytes at `offset`, retrying short reads; the result is shorter than
    /// `count` only at end of file.
    func readBytes(at offset: Int64, count: Int) throws(Errno) -> [UInt8] {
        if count <= 0 { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        do {
            try buffer.withUnsafeMutableBytes { raw in
                while filled < count {
                    let slice = UnsafeMutableRawBufferPointer(rebasing: raw[filled...])
                    let n = try self.read(fromAbsoluteOffset: offset + Int64(filled), into: slice)
                    if n == 0 { break }
                    filled += n
                }
            }
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
        if filled < count { buffer.removeLast(count - filled) }
        return buffer
    }

    /// The file's current size.
    func fileSize() throws(Errno) -> Int64 {
        try self.stat().size
    }
}
