public import ArgumentParser
public import Courier

/// `--secure --key FILE --trust NAME=FILE…`: CurveZMQ for the example programs.
public struct SecurityOptions: ParsableArguments {
    @Flag(help: "Encrypt and authenticate every connection with CurveZMQ; needs --key and a --trust for each peer.")
    public var secure = false

    @Option(name: .customLong("key"), help: ArgumentHelp(
        "This node's secret key file, as `courier-spool keygen --out FILE` writes it. Example: --key p.key",
        valueName: "FILE"))
    public var keyFile: String?

    @Option(name: .customLong("trust"), help: ArgumentHelp(
        "A peer allowed to talk to this node, and its public key file; repeat for each peer. Example: --trust C=c.key.pub",
        valueName: "NAME=FILE"))
    public var trust: [String] = []

    public init() {}

    public func validate() throws {
        guard secure else {
            if keyFile != nil || !trust.isEmpty { throw ValidationError("--key and --trust need --secure") }
            return
        }
        guard keyFile != nil else { throw ValidationError("--secure needs --key FILE (make one with courier-spool keygen --out FILE)") }
        for entry in trust where entry.split(separator: "=", maxSplits: 1).count != 2 {
            throw ValidationError("--trust takes NAME=FILE, such as --trust C=c.key.pub; got \(entry)")
        }
    }

    /// The node's security settings, or nil when `--secure` is off. Key files are read here.
    public func configuration() throws(CourierError) -> SecurityConfiguration? {
        guard secure, let keyFile else { return nil }
        var files: [String: String] = [:]
        for entry in trust {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            files[parts[0]] = parts[1]
        }
        return try SecurityConfiguration.load(keyFile: keyFile, trustedPeerKeyFiles: files)
    }
}
