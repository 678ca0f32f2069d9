public import ArgumentParser
public import Courier

/// `--secure --key FILE --trust NAME=FILE…`: CurveZMQ for the example programs.
public struct SecurityOptions: ParsableArguments {
    @Flag(help: "Encrypt and authenticate every connection with CurveZMQ; needs --key and a --trust for each peer.")
    public var secure = false

    @Option(name: .customLong("key"), help: ArgumentHelp(
        "This node's secret key file, as `courier-spool keygen --out FILE` writes it (FILE, mode 0600; not FILE.pub). Example: --key p.key",
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
        _ = try trustedPeerFiles.get()
    }

    /// The node's security settings, or nil when `--secure` is off. Key files are read here;
    /// an unusable one (missing, not a key, readable by others, a public key given as --key)
    /// throws ``CourierError/Code/invalidConfiguration``, which the programs report as a usage
    /// error (exit code 2) before their node opens the data directory.
    public func configuration() throws(CourierError) -> SecurityConfiguration? {
        guard secure, let keyFile else { return nil }
        switch trustedPeerFiles {
        case .success(let files):
            return try SecurityConfiguration.load(keyFile: keyFile, trustedPeerKeyFiles: files)
        case .failure(let problem):
            throw CourierError(.invalidConfiguration, problem.message)
        }
    }

    /// `--trust NAME=FILE…` as node id → key file, or the first entry that is malformed or
    /// names a peer again.
    private var trustedPeerFiles: Result<[String: String], ValidationError> {
        var files: [String: String] = [:]
        for entry in trust {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                return .failure(ValidationError("--trust takes NAME=FILE, such as --trust C=c.key.pub; got \(entry)"))
            }
            if let earlier = files[parts[0]] {
                return .failure(ValidationError(
                    "--trust \(parts[0]) is given twice (\(parts[0])=\(earlier) and \(entry)); give each peer one --trust NAME=FILE"))
            }
            files[parts[0]] = parts[1]
        }
        return .success(files)
    }
}
