// What the spool's tests and the courier-spool tool's tests both need to make and damage
// data directories on disk.
import CourierSpool
import Foundation
public import SystemPackage

/// A temporary directory under /tmp, removed when released.
public final class TemporaryDirectory: Sendable {
    public let path: FilePath

    /// A new directory named `/tmp/courier-<prefix>-<label>-XXXXXX`.
    public init(_ label: String = "spool", prefix: String = "spool-test") {
        let template = "/tmp/courier-\(prefix)-\(label)-XXXXXX"
        var bytes = Array(template.utf8CString)
        let result = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = FilePath(String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path.string)
    }

    deinit { remove() }

    public func sub(_ name: String) -> FilePath { path.appending(name) }
}

/// The segment files of one peer's outbound log, oldest first.
public func segmentFiles(_ directory: FilePath) throws -> [FilePath] {
    try FileManager.default.contentsOfDirectory(atPath: directory.string)
        .filter { $0.hasPrefix("seg-") && $0.hasSuffix(".log") }
        .sorted()
        .map { directory.appending($0) }
}

/// The outbound directory of `peer` in the data directory `root`.
public func peerDirectory(_ root: FilePath, _ peer: String) -> FilePath {
    root.appending("outbound").appending(PeerDirectoryName.encode(peer))
}

public func readFile(_ path: FilePath) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path.string)))
}

public func writeFile(_ path: FilePath, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path.string))
}

public func copyDirectory(_ from: FilePath, to: FilePath) throws {
    try? FileManager.default.removeItem(atPath: to.string)
    try FileManager.default.copyItem(atPath: from.string, toPath: to.string)
}
