import Foundation
import Testing
import ZeroMQ
@testable import Courier

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `SecurityConfiguration.load(keyFile:trustedPeerKeyFiles:)` treats key files the way ssh
/// does: a secret key open to group or others is refused, and so is a public key given as the
/// secret one, as far as that can be told.
@Suite("Key files: permissions and public keys given as secret", .timeLimit(.minutes(1)),
       .enabled(if: Capabilities.hasCurve, "libzmq lacks CURVE"))
struct SecurityKeyFileTests {
    /// A temporary directory of key files, each written with an exact mode.
    struct Keys {
        let directory = TemporaryDirectory("key-files")

        /// Writes `text` to `name` and sets its mode to `mode` (whatever the umask).
        @discardableResult
        func write(_ name: String, _ text: String, mode: mode_t) throws -> String {
            let path = directory.sub(name)
            try #require(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
            try #require(chmod(path, mode) == 0, "chmod \(path)")
            var info = stat()
            try #require(stat(path, &info) == 0 && info.st_mode & 0o7777 == mode)
            return path
        }

        /// A pair as `courier-spool keygen --out NAME` writes it: NAME (0600) and NAME.pub (0644).
        @discardableResult
        func keygen(_ name: String, secretMode: mode_t = 0o600) throws -> (pair: CurveKeyPair, secret: String, public: String) {
            let pair = try CurveKeyPair.generate()
            return (pair, try write(name, pair.secretKey.z85 + "\n", mode: secretMode),
                    try write(name + ".pub", pair.publicKey.z85 + "\n", mode: 0o644))
        }
    }

    /// The error `load` throws; fails the test when it loads.
    func refusal(_ keyFile: String, trusting peers: [String: String] = [:],
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> CourierError {
        let error = #expect(throws: CourierError.self, sourceLocation: sourceLocation) {
            _ = try SecurityConfiguration.load(keyFile: keyFile, trustedPeerKeyFiles: peers)
        }
        let refused = try #require(error, sourceLocation: sourceLocation)
        #expect(refused.code == .invalidConfiguration, sourceLocation: sourceLocation)
        #expect(!refused.message.contains("\n"), "one line: \(refused.message)", sourceLocation: sourceLocation)
        return refused
    }

    // MARK: Permissions

    @Test("a secret key file that group or others may read or write is refused: the file, its mode in octal and the chmod that fixes it",
          arguments: [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o666, 0o4640] as [mode_t])
    func unprotectedSecretKey(mode: mode_t) throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (_, secret, _) = try keys.keygen("node.key", secretMode: mode)
        let error = try refusal(secret)
        let octal = String(repeating: "0", count: max(0, 4 - String(mode, radix: 8).count)) + String(mode, radix: 8)
        #expect(error.message.contains("unprotected secret key file \(secret)"), "\(error.message)")
        #expect(error.message.contains("mode \(octal)"), "\(error.message)")
        #expect(error.message.hasSuffix("chmod 600 \(secret)"), "\(error.message)")
    }

    @Test("a secret key file for its owner only loads: 0600, 0400, 0700", arguments: [0o600, 0o400, 0o700] as [mode_t])
    func protectedSecretKey(mode: mode_t) throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (pair, secret, _) = try keys.keygen("node.key", secretMode: mode)
        let (peer, _, peerPublic) = try keys.keygen("peer.key")
        let loaded = try SecurityConfiguration.load(keyFile: secret, trustedPeerKeyFiles: ["peer": peerPublic])
        #expect(loaded.secretKey == pair.secretKey.z85)
        #expect(loaded.publicKey == pair.publicKey.z85)
        #expect(loaded.trustedPeers == ["peer": peer.publicKey.z85], "a public key file may be 0644")
    }

    @Test("the mode checked is the key file's, not a symbolic link's")
    func symbolicLinks() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (_, protected, _) = try keys.keygen("protected.key")
        let (_, open, _) = try keys.keygen("open.key", secretMode: 0o644)
        let linkToProtected = keys.directory.sub("current.key")
        let linkToOpen = keys.directory.sub("stale.key")
        try #require(symlink(protected, linkToProtected) == 0 && symlink(open, linkToOpen) == 0)
        _ = try SecurityConfiguration.load(keyFile: linkToProtected, trustedPeerKeyFiles: [:])
        let error = try refusal(linkToOpen)
        #expect(error.message.contains("mode 0644") && error.message.contains("chmod 600 \(linkToOpen)"), "\(error.message)")
    }

    @Test("the chmod in the message is one shell word, quoted when the path needs it")
    func chmodQuoting() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let pair = try CurveKeyPair.generate()
        let path = try keys.write("it's a key", pair.secretKey.z85, mode: 0o640)
        let error = try refusal(path)
        #expect(error.message.hasSuffix("chmod 600 '\(keys.directory.path)/it'\\''s a key'"), "\(error.message)")
        #expect(error.message.contains("mode 0640"))
    }

    // MARK: A public key given as the secret key

    @Test("FILE.pub given as the key file is refused before its mode is looked at, and the message names FILE")
    func publicFileByName() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (_, secret, publicFile) = try keys.keygen("node.key")
        let error = try refusal(publicFile)
        #expect(error.message.contains("\(publicFile) is a public key file (its name ends in .pub)"), "\(error.message)")
        #expect(error.message.contains("pass \(secret) instead"), "\(error.message)")
        #expect(!error.message.contains("chmod"), "a public key file needs no chmod: \(error.message)")
    }

    @Test("a file starting with public: given as the key file is refused, even at mode 0600")
    func publicFileByPrefix() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let pair = try CurveKeyPair.generate()
        let path = try keys.write("node.key", "public: \(pair.publicKey.z85)\n", mode: 0o600)
        let error = try refusal(path)
        #expect(error.message.contains("\(path) holds a public key (it starts with public:)"), "\(error.message)")
        #expect(error.message.contains("not FILE.pub"), "\(error.message)")
        let open = try keys.write("open.key", "public: \(pair.publicKey.z85)\n", mode: 0o644)
        #expect(!(try refusal(open)).message.contains("chmod"), "the public key is the problem, not the mode")
    }

    @Test("a file starting with secret: (the line `courier-spool keygen` prints) is a secret key file")
    func secretPrefix() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let pair = try CurveKeyPair.generate()
        let path = try keys.write("node.key", "secret: \(pair.secretKey.z85)\n", mode: 0o600)
        #expect(try SecurityConfiguration.load(keyFile: path, trustedPeerKeyFiles: [:]).publicKey == pair.publicKey.z85)
    }

    @Test("both lines of `courier-spool keygen` in one file are refused with a message saying so")
    func keygenOutputInOneFile() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let pair = try CurveKeyPair.generate()
        let path = try keys.write("node.key", "public: \(pair.publicKey.z85)\nsecret: \(pair.secretKey.z85)\n", mode: 0o600)
        let error = try refusal(path)
        #expect(error.message.contains("\(path) holds both keys of a pair"), "\(error.message)")
        #expect(error.message.contains("courier-spool keygen --out FILE"), "\(error.message)")
    }

    @Test("a key file holding a trusted peer's public key is refused, naming the peer and its file")
    func keyFileIsAPeersPublicKey() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (peer, _, peerPublic) = try keys.keygen("c.key")
        let copied = try keys.write("p.key", peer.publicKey.z85 + "\n", mode: 0o600)   // no .pub, no prefix
        let error = try refusal(copied, trusting: ["C": peerPublic])
        #expect(error.message.contains("\(copied) holds a public key"), "\(error.message)")
        #expect(error.message.contains("the public key of peer C from \(peerPublic)"), "\(error.message)")
    }

    @Test("a key file given again as a peer's key (not a .pub) is refused, naming both files")
    func secretKeyGivenAsAPeersKey() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (_, secret, _) = try keys.keygen("p.key")
        let error = try refusal(secret, trusting: ["C": secret])
        #expect(error.message.contains("\(secret) (this node's secret key) and \(secret) (the public key of peer C) hold the same key"), "\(error.message)")
    }

    @Test("a key file holding the same key as its own FILE.pub is refused")
    func keyFileEqualsItsOwnPub() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let pair = try CurveKeyPair.generate()
        let path = try keys.write("node.key", pair.publicKey.z85 + "\n", mode: 0o600)
        try keys.write("node.key.pub", pair.publicKey.z85 + "\n", mode: 0o644)
        let error = try refusal(path)
        #expect(error.message.contains("\(path) holds a public key"), "\(error.message)")
        #expect(error.message.contains("the same key as \(path).pub"), "\(error.message)")
    }

    @Test("a key file whose FILE.pub is another pair's public key is refused: they are not one pair")
    func keyFileAndPubFromDifferentPairs() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (mine, theirs) = (try CurveKeyPair.generate(), try CurveKeyPair.generate())
        let path = try keys.write("node.key", mine.secretKey.z85 + "\n", mode: 0o600)
        try keys.write("node.key.pub", theirs.publicKey.z85 + "\n", mode: 0o644)
        let error = try refusal(path)
        #expect(error.message.contains("\(path) and \(path).pub are not one key pair"), "\(error.message)")
    }

    @Test("this node's own public key listed as a peer's is refused")
    func ownPublicKeyTrusted() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (_, secret, publicFile) = try keys.keygen("p.key")
        let error = try refusal(secret, trusting: ["C": publicFile])
        #expect(error.message.contains("\(publicFile), given as the public key of peer C, holds this node's own public key (derived from \(secret))"),
                "\(error.message)")
    }

    @Test("a peer's key file starting with secret: is refused: a peer's key is its public key")
    func secretKeyTrusted() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (_, secret, _) = try keys.keygen("p.key")
        let other = try CurveKeyPair.generate()
        let leaked = try keys.write("c.key", "secret: \(other.secretKey.z85)\n", mode: 0o600)
        let error = try refusal(secret, trusting: ["C": leaked])
        #expect(error.message.contains("\(leaked), given as the public key of C, holds a secret key"), "\(error.message)")
    }

    @Test("a key pair as keygen writes it, trusting two peers, loads")
    func keygenLayoutLoads() throws {
        let keys = Keys()
        defer { keys.directory.cleanup() }
        let (pair, secret, _) = try keys.keygen("p.key")
        let (c, _, cPublic) = try keys.keygen("c.key")
        let (d, _, _) = try keys.keygen("d.key")
        let dPublic = try keys.write("d-public", "public: \(d.publicKey.z85)\n", mode: 0o644)
        let loaded = try SecurityConfiguration.load(keyFile: secret, trustedPeerKeyFiles: ["C": cPublic, "D": dPublic])
        #expect(loaded == SecurityConfiguration(publicKey: pair.publicKey.z85, secretKey: pair.secretKey.z85,
                                                trustedPeers: ["C": c.publicKey.z85, "D": d.publicKey.z85]))
    }
}
