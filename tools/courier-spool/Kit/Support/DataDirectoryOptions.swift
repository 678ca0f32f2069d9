import ArgumentParser
import CourierSpool
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The data directory every spool command takes as its first argument.
struct DataDirectoryArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The node's data directory (its --data-dir).", valueName: "DATA_DIR"))
    var path: String

    var filePath: FilePath { FilePath(path) }

    /// Checks that the directory exists and looks like a Courier data directory, so a typo
    /// is a usage error rather than an empty listing.
    func checked() throws(ToolError) -> FilePath {
        guard isDirectory(filePath) else {
            throw .usage("\(path) is not a directory (give the node's --data-dir)")
        }
        guard ["outbound", "inbound", "LOCK"].contains(where: { exists(filePath.appending($0)) }) else {
            throw .usage("\(path) is not a Courier data directory (it has no outbound/, inbound/ or LOCK)")
        }
        return filePath
    }

    /// Checks that `peer` has an outbound log here; the error lists the peers that do.
    func checkedPeer(_ peer: String, inspector: SpoolInspector) throws(ToolError) {
        let peers = try ToolError.wrap { () throws(SpoolError) in try inspector.peers() }
        guard peers.contains(peer) else {
            let known = peers.isEmpty ? "it has no outbound logs" : "its peers are " + peers.joined(separator: ", ")
            throw .usage("\(path) has no outbound log for peer \(peer) (\(known))")
        }
    }
}

private func isDirectory(_ path: FilePath) -> Bool {
    var info = stat()
    return path.withPlatformString { stat($0, &info) } == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

private func exists(_ path: FilePath) -> Bool {
    var info = stat()
    return path.withPlatformString { stat($0, &info) } == 0
}

extension ToolError {
    /// Runs spool work, turning a `SpoolError` into one line and exit code 1.
    static func wrap<T>(_ work: () throws(SpoolError) -> T) throws(ToolError) -> T {
        do {
            return try work()
        } catch {
            throw .failure(describe(error))
        }
    }

    /// A spool error as one line: its message, the file and the failing call.
    static func describe(_ error: SpoolError) -> String {
        var text = error.message
        if let path = error.path { text += " (\(path))" }
        if let call = error.systemCall, let errno = error.errno { text += ": \(call) failed: \(errno)" }
        return text
    }
}
