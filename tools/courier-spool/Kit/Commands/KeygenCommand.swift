import ArgumentParser
import SystemPackage
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct KeygenCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Generate a CurveZMQ key pair, in ZeroMQ's Z85 text form.",
        discussion: """
            Without --out, prints the pair as two lines, "public: …" and "secret: …". With \
            --out FILE, writes the secret key to FILE (mode 0600) and the public key to \
            FILE.pub, each as one line of 40 Z85 characters; an existing FILE or FILE.pub is \
            never overwritten. Give the public key to the peers that must accept this node; \
            keep the secret key to this node.

            Examples:
              courier-spool keygen
              courier-spool keygen --out /etc/courier/node.key
            """)

    @Option(help: ArgumentHelp(
        "Write the secret key to FILE and the public key to FILE.pub instead of printing them. Example: --out node.key",
        valueName: "FILE"))
    var out: String?

    func validate() throws {
        if let out, out.isEmpty { throw ValidationError("--out needs a file name") }
    }

    func execute(in context: ToolContext) throws -> Int32 {
        guard Capabilities.hasCurve else {
            throw ToolError.failure("the libzmq this program uses was built without CurveZMQ support")
        }
        let pair: CurveKeyPair
        do {
            pair = try CurveKeyPair.generate()
        } catch {
            throw ToolError.failure("cannot generate a key pair: \(error)")
        }
        guard let out else {
            context.standardOutput.write("public: \(pair.publicKey.z85)\nsecret: \(pair.secretKey.z85)\n")
            return ExitStatus.success
        }
        let secretPath = FilePath(out)
        let publicPath = FilePath(out + ".pub")
        for path in [secretPath, publicPath] where exists(path) {
            throw ToolError.failure("\(path) exists; refusing to overwrite it (choose another --out)")
        }
        try write(pair.secretKey.z85 + "\n", to: secretPath, permissions: [.ownerReadWrite])
        do {
            try write(pair.publicKey.z85 + "\n", to: publicPath, permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            unlinkQuietly(secretPath)
            throw error
        }
        context.standardOutput.write("wrote the secret key to \(secretPath) (mode 0600) and the public key to \(publicPath)\n"
            + "public: \(pair.publicKey.z85)\n")
        return ExitStatus.success
    }

    /// Creates `path` (never replacing a file), writes `text` and syncs it.
    private func write(_ text: String, to path: FilePath, permissions: FilePermissions) throws(ToolError) {
        do {
            let fd = try FileDescriptor.open(path, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec], permissions: permissions)
            try fd.closeAfter {
                _ = try fd.writeAll(Array(text.utf8))
                if fsync(fd.rawValue) != 0 { throw Errno(rawValue: errno) }
            }
        } catch Errno.fileExists {
            throw .failure("\(path) exists; refusing to overwrite it (choose another --out)")
        } catch {
            throw .failure("cannot write \(path): \(error)")
        }
    }

    private func exists(_ path: FilePath) -> Bool {
        var info = stat()
        return path.withPlatformString { lstat($0, &info) } == 0
    }

    private func unlinkQuietly(_ path: FilePath) {
        _ = path.withPlatformString { unlink($0) }
    }
}
