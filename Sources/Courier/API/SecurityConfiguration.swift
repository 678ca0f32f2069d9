import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CurveZMQ security: encryption of every connection, and an allow-list that binds each
/// peer's public key to exactly one node id.
///
/// With security on, the node's ROUTER is a CURVE server with ``secretKey``; each DEALER is a
/// CURVE client that pins its peer's key from ``trustedPeers``. A ZAP handler on the node's
/// I/O thread admits only keys in ``trustedPeers`` and labels each connection with the id
/// listed for its key; a frame whose routing id is not that id is refused and counted.
///
/// ```swift
/// configuration.security = try SecurityConfiguration.load(
///     keyFile: "/etc/courier/billing.key",                  // from `courier-spool keygen --out`
///     trustedPeerKeyFiles: ["ledger": "/etc/courier/ledger.key.pub"])
/// ```
public struct SecurityConfiguration: Sendable, Hashable {
    /// This node's public key, 40 characters of Z85.
    public var publicKey: String
    /// This node's secret key, 40 characters of Z85. Keep it out of logs.
    public var secretKey: String
    /// Every node this node talks to, in either direction: node id → its public key (Z85).
    /// A key may appear once; a connection authenticated with it may speak only as that id.
    public var trustedPeers: [String: String]

    /// Security from keys in Z85 text: this node's pair, and each trusted peer's public key by node id.
    /// Most services use ``load(keyFile:trustedPeerKeyFiles:)`` instead.
    public init(publicKey: String, secretKey: String, trustedPeers: [String: String]) {
        self.publicKey = publicKey
        self.secretKey = secretKey
        self.trustedPeers = trustedPeers
    }

    /// Reads this node's secret key from `keyFile` (the public key is derived from it) and
    /// each trusted peer's public key from its file, as `courier-spool keygen --out` writes
    /// them (one Z85 key per file; a `public:` or `secret:` prefix is accepted).
    ///
    /// Like ssh with a private key, it refuses a secret key file that group or others may
    /// read or write (mode & 0o077 ≠ 0): `chmod 600 FILE` fixes that. It also refuses a public
    /// key given as the secret key, as far as that can be told: a file named `*.pub`, a file
    /// that starts with `public:`, a key equal to a trusted peer's key or to the key in its
    /// own `FILE.pub`. (A bare 40-character key does not say whether it is public or secret.)
    /// A `FILE.pub` next to `keyFile` must hold the public key derived from it, and no
    /// trusted peer may be listed with this node's own public key or with a secret key.
    ///
    /// - Throws: ``CourierError/Code/invalidConfiguration`` naming the file that is missing,
    ///   unreadable, not a key, not protected, or the wrong key, and saying what to do.
    public static func load(keyFile: String, trustedPeerKeyFiles: [String: String]) throws(CourierError) -> SecurityConfiguration {
        if keyFile.hasSuffix(".pub") {
            throw CourierError(.invalidConfiguration, "\(keyFile) is a public key file (its name ends in .pub), not this node's secret key: "
                + "pass \(keyFile.dropLast(4)) instead, the secret key file without .pub")
        }
        let own = try KeyFile.load(keyFile, what: "this node's secret key")
        if own.label == .public {
            throw CourierError(.invalidConfiguration, "\(keyFile) holds a public key (it starts with public:), not this node's secret key: "
                + Self.passSecretInstead)
        }
        let pair: CurveKeyPair
        do { pair = try CurveKeyPair(secretKey: own.key) } catch {
            throw CourierError(.invalidConfiguration, "cannot derive the public key from \(keyFile): \(error.message)", underlying: error)
        }
        var peers: [String: String] = [:]
        for (id, path) in trustedPeerKeyFiles.sorted(by: { $0.key < $1.key }) {
            let peer = try KeyFile.load(path, what: "the public key of \(id)")
            if peer.label == .secret {
                throw CourierError(.invalidConfiguration, "\(path), given as the public key of \(id), holds a secret key (it starts with secret:): "
                    + "pass \(id)'s public key file instead (FILE.pub from `courier-spool keygen --out FILE`)")
            }
            if peer.key == own.key {
                if path.hasSuffix(".pub") || peer.label == .public {
                    throw CourierError(.invalidConfiguration, "\(keyFile) holds a public key, not this node's secret key: it is the public key of peer \(id) "
                        + "from \(path); " + Self.passSecretInstead)
                }
                throw CourierError(.invalidConfiguration, "\(keyFile) (this node's secret key) and \(path) (the public key of peer \(id)) hold the same key: "
                    + "the key file must be this node's secret key (FILE from `courier-spool keygen --out FILE`) and \(id)'s file its public key (FILE.pub)")
            }
            if peer.key == pair.publicKey {
                throw CourierError(.invalidConfiguration, "\(path), given as the public key of peer \(id), holds this node's own public key (derived from \(keyFile)): "
                    + "pass \(id)'s public key file instead")
            }
            peers[id] = peer.key.z85
        }
        // The public key keygen wrote next to the secret one, when it is there.
        if let sibling = KeyFile.loadIfPresent(keyFile + ".pub") {
            if sibling.key == own.key {
                throw CourierError(.invalidConfiguration, "\(keyFile) holds a public key, not this node's secret key: it is the same key as \(keyFile).pub; "
                    + Self.passSecretInstead)
            }
            if sibling.key != pair.publicKey {
                throw CourierError(.invalidConfiguration, "\(keyFile) and \(keyFile).pub are not one key pair: the public key derived from \(keyFile) is not the one in "
                    + "\(keyFile).pub, so peers that trust \(keyFile).pub would refuse this node; pass the secret key that belongs to \(keyFile).pub, "
                    + "or make a new pair with `courier-spool keygen --out FILE`")
            }
        }
        if own.mode & 0o077 != 0 {
            throw CourierError(.invalidConfiguration, "unprotected secret key file \(keyFile): its mode \(octal(own.mode)) lets group or others read or write it "
                + "(a secret key file must be for its owner only, as `courier-spool keygen --out` writes it); fix it with: chmod 600 \(shellQuoted(keyFile))")
        }
        return SecurityConfiguration(publicKey: pair.publicKey.z85, secretKey: own.key.z85, trustedPeers: peers)
    }

    private static let passSecretInstead =
        "pass this node's secret key file instead, the one `courier-spool keygen --out FILE` wrote as FILE (not FILE.pub)"

    /// A key file as read: its key, the label in front of it, and the file's permission bits.
    private struct KeyFile {
        enum Label { case none, `public`, secret }
        var key: CurveKey
        var label: Label
        var mode: UInt32

        static func load(_ path: String, what: String) throws(CourierError) -> KeyFile {
            let (text, mode) = try contents(path, what: what)
            if let file = parse(text, mode: mode) { return file }
            let lines = text.split(whereSeparator: \.isNewline).map { $0.drop { $0 == " " || $0 == "\t" } }
            if lines.contains(where: { $0.hasPrefix("public:") }), lines.contains(where: { $0.hasPrefix("secret:") }) {
                throw CourierError(.invalidConfiguration, "\(path) holds both keys of a pair, as `courier-spool keygen` prints them, not \(what) alone: "
                    + "write the pair with `courier-spool keygen --out FILE` (FILE holds the secret key, FILE.pub the public one)")
            }
            throw CourierError(.invalidConfiguration, "\(path) does not hold \(what): expected 40 characters of Z85 text, as `courier-spool keygen --out` writes")
        }

        /// The key in `path`, or nil when there is no such file or it holds no key.
        static func loadIfPresent(_ path: String) -> KeyFile? {
            guard let (text, mode) = try? contents(path, what: "a key") else { return nil }
            return parse(text, mode: mode)
        }

        /// One key, possibly behind a `public:` or `secret:` label.
        private static func parse(_ text: String, mode: UInt32) -> KeyFile? {
            var body = Substring(text).drop { $0 == " " || $0 == "\t" || $0.isNewline }
            var label = Label.none
            for (prefix, kind) in [("public:", Label.public), ("secret:", .secret)] where body.hasPrefix(prefix) {
                body = body.dropFirst(prefix.count)
                label = kind
            }
            guard let key = try? CurveKey(z85: body) else { return nil }
            return KeyFile(key: key, label: label, mode: mode)
        }

        /// The first 4 KiB of `path` (a key file is 41 bytes) and its permission bits, from
        /// the opened file itself.
        private static func contents(_ path: String, what: String) throws(CourierError) -> (String, UInt32) {
            func failure(_ action: String) -> CourierError {
                CourierError(.invalidConfiguration, "cannot \(action) \(what) from \(path): \(String(cString: strerror(errno)))")
            }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw failure("read") }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw failure("check the permissions of") }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var count = 0
            while count < buffer.count {
                let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
                if got < 0, errno == EINTR { continue }
                guard got >= 0 else { throw failure("read") }
                if got == 0 { break }
                count += got
            }
            return (String(decoding: buffer.prefix(count), as: UTF8.self), UInt32(info.st_mode) & 0o7777)
        }
    }

    /// Permission bits in octal, four digits, such as 0644.
    private static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// `path` as one word for a POSIX shell: as it is when it is plain, else in single quotes.
    private static func shellQuoted(_ path: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@%=")
        let plain = !path.isEmpty && path.allSatisfy(safe.contains)
        return plain ? path : "'" + path.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// The checked form the I/O thread uses.
    func validated(nodeID: String, peers: [PeerConfiguration]) throws(CourierError) -> Keys {
        guard Capabilities.hasCurve else {
            throw CourierError(.invalidConfiguration, "security is on but this libzmq was built without CURVE (zmq_has(\"curve\") is false); install a libzmq with libsodium")
        }
        func key(_ text: String, _ what: String) throws(CourierError) -> CurveKey {
            do { return try CurveKey(z85: text) } catch {
                throw CourierError(.invalidConfiguration, "\(what) is not a CURVE key: expected 40 characters of Z85 text")
            }
        }
        let secret = try key(secretKey, "this node's secret key")
        let public_ = try key(publicKey, "this node's public key")
        guard let derived = try? CurveKeyPair(secretKey: secret), derived.publicKey == public_ else {
            throw CourierError(.invalidConfiguration, "this node's public key does not belong to its secret key")
        }
        var byKey: [CurveKey: String] = [:]
        var byID: [String: CurveKey] = [:]
        for (id, text) in trustedPeers.sorted(by: { $0.key < $1.key }) {
            let peerKey = try key(text, "the key of peer \(id)")
            if let other = byKey[peerKey] {
                throw CourierError(.invalidConfiguration, "peers \(other) and \(id) are listed with the same key; a key may stand for one node id only")
            }
            byKey[peerKey] = id
            byID[id] = peerKey
        }
        for peer in peers where byID[peer.id] == nil {
            throw CourierError(.invalidConfiguration, "security is on but peer \(peer.id) has no public key in trustedPeers")
        }
        return Keys(own: CurveKeyPair(publicKey: public_, secretKey: secret), idByKey: byKey, keyByID: byID)
    }

    /// Keys in their binary form, checked.
    struct Keys: Sendable {
        var own: CurveKeyPair
        var idByKey: [CurveKey: String]
        var keyByID: [String: CurveKey]
    }
}
