import ZeroMQ

#if canImport(Glibc)
import Glibc
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
    /// - Throws: ``CourierError/Code/invalidConfiguration`` naming the file that is missing,
    ///   unreadable or not a key.
    public static func load(keyFile: String, trustedPeerKeyFiles: [String: String]) throws(CourierError) -> SecurityConfiguration {
        let secret = try readKey(keyFile, what: "this node's secret key")
        let pair: CurveKeyPair
        do { pair = try CurveKeyPair(secretKey: secret) } catch {
            throw CourierError(.invalidConfiguration, "cannot derive the public key from \(keyFile): \(error.message)", underlying: error)
        }
        var peers: [String: String] = [:]
        for (id, path) in trustedPeerKeyFiles {
            peers[id] = try readKey(path, what: "the public key of \(id)").z85
        }
        return SecurityConfiguration(publicKey: pair.publicKey.z85, secretKey: secret.z85, trustedPeers: peers)
    }

    private static func readKey(_ path: String, what: String) throws(CourierError) -> CurveKey {
        guard let file = fopen(path, "r") else {
            let reason = String(cString: strerror(errno))
            throw CourierError(.invalidConfiguration, "cannot read \(what) from \(path): \(reason)")
        }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = fread(&buffer, 1, buffer.count - 1, file)
        var text = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        for prefix in ["public:", "secret:"] where text.hasPrefix(prefix) { text = String(text.dropFirst(prefix.count)) }
        do { return try CurveKey(z85: text) } catch {
            throw CourierError(.invalidConfiguration, "\(path) does not hold \(what): expected 40 characters of Z85 text, as `courier-spool keygen --out` writes")
        }
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
