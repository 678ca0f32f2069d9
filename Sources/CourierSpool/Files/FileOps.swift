#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// The few path-level file system calls the spool needs, with errors mapped to ``SpoolError``.
enum FileOps {
    /// The system's page size: writes are copied into the page cache a page at a time, so a
    /// write a crash cuts short stops on a multiple of it.
    static let pageSize = Int64(max(4096, sysconf(Int32(_SC_PAGESIZE))))

    /// fsyncs a directory so that a file created, renamed or deleted in it stays so.
    static func syncDirectory(_ path: FilePath) throws(SpoolError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, .readOnly, options: [.directory])
        } catch {
            throw SpoolError.from(error, call: "open", path: path, doing: "opening the directory to sync it")
        }
        defer { try? fd.close() }
        do {
            try fd.fullSync()
        } catch {
            throw SpoolError.system("fsync", error, path: path, doing: "syncing the directory")
        }
    }

    /// Creates a directory (and its parents) if missing; syncs each parent it created in.
    static func makeDirectory(_ path: FilePath) throws(SpoolError) {
        if isDirectory(path) { return }
        var parent = path
        parent.removeLastComponent()
        if !parent.isEmpty, parent != path { try makeDirectory(parent) }
        let result = path.withPlatformString { mkdir($0, 0o755) }
        if result != 0 {
            let error = Errno(rawValue: errno)
            if error != .fileExists {
                throw SpoolError.system("mkdir", error, path: path, doing: "creating the directory")
            }
        }
        if !parent.isEmpty { try syncDirectory(parent) }
    }

    static func isDirectory(_ path: FilePath) -> Bool {
        var info = stat()
        let result = path.withPlatformString { stat($0, &info) }
        return result == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: FilePath) -> Bool {
        var info = stat()
        return path.withPlatformString { stat($0, &info) } == 0
    }

    /// The names in a directory, without "." and "..". ENOENT gives an empty list.
    static func list(_ path: FilePath) throws(SpoolError) -> [String] {
        guard let dir = path.withPlatformString({ opendir($0) }) else {
            let error = Errno(rawValue: errno)
            if error == .noSuchFileOrDirectory { return [] }
            throw SpoolError.system("opendir", error, path: path, doing: "listing the directory")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func renameFile(_ from: FilePath, to: FilePath) throws(SpoolError) {
        let result = from.withPlatformString { a in to.withPlatformString { b in rename(a, b) } }
        if result != 0 {
            throw SpoolError.system("rename", Errno(rawValue: errno), path: from, doing: "renaming to \(to)")
        }
    }

    /// Deletes a file; a missing file is not an error.
    static func unlinkFile(_ path: FilePath) throws(SpoolError) {
        let result = path.withPlatformString { unlink($0) }
        if result != 0 {
            let error = Errno(rawValue: errno)
            if error == .noSuchFileOrDirectory { return }
            throw SpoolError.system("unlink", error, path: path, doing: "deleting the file")
        }
    }

    /// How much of a deleted file ``freeInSlices(_:)`` frees per `ftruncate`.
    static let freeSliceBytes: Int64 = 512 << 10

    /// Frees the blocks of an unlinked file still open as `fd`, cutting it down from its end
    /// ``freeSliceBytes`` at a time, so that the caller's `close` has nothing left to free.
    ///
    /// Freeing a file of several MiB in one piece holds up every `fdatasync` on the same
    /// file system, in any process, until it is done: on this project's machines (ext4
    /// mounted with `discard`) a concurrent sync waited 3–4 ms behind an 8 MiB file and
    /// 13–15 ms behind a 64 MiB one, and under 1 ms with 512 KiB slices, for about the same
    /// total time. A file that still has a name is left alone; any error ends the cutting,
    /// and the close then frees the rest in one piece.
    static func freeInSlices(_ fd: FileDescriptor) {
        guard let status = try? fd.stat(), status.linkCount == 0 else { return }
        var size = status.size
        while size > 0 {
            size = max(0, size - freeSliceBytes)
            do { try fd.resize(to: size) } catch { return }
        }
    }

    /// Opens for reading; `nil` if the file does not exist.
    static func openForReading(_ path: FilePath) throws(SpoolError) -> FileDescriptor? {
        do {
            return try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch Errno.noSuchFileOrDirectory {
            return nil
        } catch {
            throw SpoolError.from(error, call: "open", path: path, doing: "opening for reading")
        }
    }

    /// Opens for reading and writing, creating the file if `create`.
    static func openForWriting(_ path: FilePath, create: Bool) throws(SpoolError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(
                path, .readWrite,
                options: create ? [.create, .closeOnExec] : [.closeOnExec],
                permissions: [.ownerReadWrite, .groupRead, .otherRead]
            )
        } catch {
            throw SpoolError.from(error, call: "open", path: path, doing: "opening for writing")
        }
    }

    /// Writes `bytes` to a new file at `path` through a temporary file, datasync and rename,
    /// then syncs the directory: the file is either absent, old, or whole.
    static func writeAtomically(_ bytes: [UInt8], to path: FilePath) throws(SpoolError) {
        let temporary = FilePath(path.string + ".tmp")
        try writeAndSync(bytes, to: temporary)
        try renameFile(temporary, to: path)
        var directory = path
        directory.removeLastComponent()
        try syncDirectory(directory)
    }

    /// Creates (or truncates) `temporary`, writes `bytes` and syncs it; removes it on failure.
    static func writeAndSync(_ bytes: [UInt8], to temporary: FilePath) throws(SpoolError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                temporary, .writeOnly, options: [.create, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite, .groupRead, .otherRead]
            )
        } catch {
            throw SpoolError.from(error, call: "open", path: temporary, doing: "creating a temporary file")
        }
        do {
            _ = try fd.writeAll(bytes)
            try fd.datasync()
            try fd.close()
        } catch {
            try? fd.close()
            try? unlinkFile(temporary)
            throw SpoolError.from(error, call: "write", path: temporary, doing: "writing a temporary file")
        }
    }
}
