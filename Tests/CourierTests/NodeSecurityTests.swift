import Foundation
import Testing
import ZeroMQ
@testable import Courier

@Suite("CurveZMQ security", .timeLimit(.minutes(2)), .enabled(if: Capabilities.hasCurve, "libzmq lacks CURVE"))
struct NodeSecurityTests {
    struct Party {
        let id: String
        let keys: CurveKeyPair
        init(_ id: String) throws { self.id = id; keys = try CurveKeyPair.generate() }
        func security(trusting others: [Party], as claimed: Party? = nil) -> SecurityConfiguration {
            SecurityConfiguration(publicKey: keys.publicKey.z85, secretKey: keys.secretKey.z85,
                                  trustedPeers: Dictionary(uniqueKeysWithValues: others.map { ($0.id, $0.keys.publicKey.z85) }))
        }
    }

    func node(_ party: Party, _ directory: TemporaryDirectory, listen: [String] = [], to peer: (String, String)? = nil,
              security: SecurityConfiguration?, asID: String? = nil) async throws -> Node {
        var settings = configuration(id: asID ?? party.id, directory: directory.sub(party.id + (asID ?? "")), listen: listen,
                                     peers: peer.map { [PeerConfiguration(id: $0.0, endpoints: [$0.1])] } ?? [])
        settings.security = security
        return try await Node.start(settings)
    }

    @Test("two secure nodes exchange messages, and the payload never crosses the wire in clear")
    func secureExchange() async throws {
        let directory = TemporaryDirectory("secure")
        defer { directory.cleanup() }
        let (alice, bob) = (try Party("alice"), try Party("bob"))
        let endpoint = freeLoopbackEndpoint()
        let relay = try TCPRelay(forwardingTo: endpoint)
        defer { relay.stop() }
        let receiver = try await node(bob, directory, listen: [endpoint], security: bob.security(trusting: [alice]))
        let sender = try await node(alice, directory, to: ("bob", relay.endpoint), security: alice.security(trusting: [bob]))
        let secret = "TOP-SECRET-PAYLOAD-4711"
        _ = try await sender.send(batch: (1...20).map { Array("\(secret)-\($0)".utf8) }, to: "bob")
        let received = try await within(.seconds(20), "secure delivery") { await receive(20, from: receiver) }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (1...20).map { "\(secret)-\($0)" })
        #expect(received.allSatisfy { $0.sender == "alice" })
        try await within(.seconds(10), "drain") { try await sender.waitUntilDelivered(to: "bob") }
        #expect(relay.bytes.count > 20 * secret.utf8.count, "the relay saw the traffic")
        #expect(!relay.contains(Array(secret.utf8)), "the payload crossed the wire in clear")
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("without security the same capture does show the payload (the capture works)")
    func plainCaptureControl() async throws {
        let directory = TemporaryDirectory("plain-capture")
        defer { directory.cleanup() }
        let endpoint = freeLoopbackEndpoint()
        let relay = try TCPRelay(forwardingTo: endpoint)
        defer { relay.stop() }
        let receiver = try await Node.start(configuration(id: "bob", directory: directory.sub("b"), listen: [endpoint]))
        let sender = try await Node.start(configuration(id: "alice", directory: directory.sub("a"),
                                                        peers: [PeerConfiguration(id: "bob", endpoints: [relay.endpoint])]))
        _ = try await sender.send(Array("VISIBLE-PAYLOAD-0815".utf8), to: "bob")
        _ = try await within(.seconds(20), "delivery") { await receive(1, from: receiver) }
        #expect(relay.contains(Array("VISIBLE-PAYLOAD-0815".utf8)))
        await sender.shutdown()
        await receiver.shutdown()
    }

    @Test("a key that is not on the allow-list is refused at the handshake")
    func unknownKey() async throws {
        let directory = TemporaryDirectory("unknown-key")
        defer { directory.cleanup() }
        let (alice, bob, eve) = (try Party("alice"), try Party("bob"), try Party("eve"))
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await node(bob, directory, listen: [endpoint], security: bob.security(trusting: [alice]))
        let refused = Task {
            for await event in receiver.events {
                if case .handshakeRefused(let key, _) = event { return key }
            }
            return ""
        }
        let intruder = try await node(eve, directory, to: ("bob", endpoint), security: eve.security(trusting: [bob]))
        _ = try await intruder.send(Array("let me in".utf8), to: "bob")
        let key = try await within(.seconds(20), "refusal") { await refused.value }
        #expect(key == eve.keys.publicKey.z85)
        #expect(intruder.statistics(for: "bob")?.connected != true)
        await intruder.shutdown(timeout: .zero)
        await receiver.shutdown()
    }

    @Test("a known key speaking under another node's id is refused, never applied")
    func impersonation() async throws {
        let directory = TemporaryDirectory("impersonation")
        defer { directory.cleanup() }
        let (alice, bob, mallory) = (try Party("alice"), try Party("bob"), try Party("mallory"))
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await node(bob, directory, listen: [endpoint], security: bob.security(trusting: [alice, mallory]))
        let refused = Task {
            for await event in receiver.events {
                if case .hostileFrameDropped(let from, let reason) = event, reason.contains("does not match"), reason.contains("(mallory)") { return from }
            }
            return ""
        }
        // Mallory's own key, but the routing id "alice".
        let fake = try await node(mallory, directory, to: ("bob", endpoint), security: mallory.security(trusting: [bob]), asID: "alice")
        _ = try await fake.send(Array("pay mallory".utf8), to: "bob")
        #expect(try await within(.seconds(20), "refusal") { await refused.value } == "alice")
        #expect(fake.statistics(for: "bob")?.processed == 0)
        await fake.shutdown(timeout: .zero)
        await receiver.shutdown()
    }

    @Test("a plain-text peer cannot talk to a secure node")
    func plainTextPeer() async throws {
        let directory = TemporaryDirectory("plain-to-secure")
        defer { directory.cleanup() }
        let (alice, bob) = (try Party("alice"), try Party("bob"))
        let endpoint = freeLoopbackEndpoint()
        let receiver = try await node(bob, directory, listen: [endpoint], security: bob.security(trusting: [alice]))
        let plain = try await node(alice, directory, to: ("bob", endpoint), security: nil)
        _ = try await plain.send(Array("in clear".utf8), to: "bob")
        // A bounded observation window: nothing may arrive in it.
        let delivered = try await within(.seconds(5), "observation") { () -> Bool in
            await withTaskGroup(of: Bool.self) { group in
                group.addTask { for await _ in receiver.messages { return true }; return false }
                group.addTask { try? await Task.sleep(for: .milliseconds(700)); return false }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
        }
        #expect(!delivered)
        #expect(plain.statistics(for: "bob")?.connected != true)
        await plain.shutdown(timeout: .zero)
        await receiver.shutdown()
    }

    @Test("bad key material stops the node from starting, with the file or peer named")
    func badKeys() async throws {
        let directory = TemporaryDirectory("bad-keys")
        defer { directory.cleanup() }
        let missing = #expect(throws: CourierError.self) {
            _ = try SecurityConfiguration.load(keyFile: directory.sub("nope.key"), trustedPeerKeyFiles: [:])
        }
        #expect(missing?.code == .invalidConfiguration)
        #expect(missing?.message.contains("nope.key") == true)
        try "not a key\n".write(toFile: directory.sub("garbage.key"), atomically: true, encoding: .utf8)
        let garbage = #expect(throws: CourierError.self) {
            _ = try SecurityConfiguration.load(keyFile: directory.sub("garbage.key"), trustedPeerKeyFiles: [:])
        }
        #expect(garbage?.message.contains("garbage.key") == true)

        let (pair, peer) = (try CurveKeyPair.generate(), try CurveKeyPair.generate())
        try (pair.secretKey.z85 + "\n").write(toFile: directory.sub("good.key"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory.sub("good.key"))
        try (peer.publicKey.z85 + "\n").write(toFile: directory.sub("peer.key.pub"), atomically: true, encoding: .utf8)
        let loaded = try SecurityConfiguration.load(keyFile: directory.sub("good.key"), trustedPeerKeyFiles: ["peer": directory.sub("peer.key.pub")])
        #expect(loaded.publicKey == pair.publicKey.z85)
        #expect(loaded.trustedPeers == ["peer": peer.publicKey.z85])

        let (alice, bob) = (try Party("alice"), try Party("bob"))
        var noPeerKey = configuration(id: "alice", directory: directory.sub("a"), peers: [PeerConfiguration(id: "bob", endpoints: ["tcp://127.0.0.1:1"])])
        noPeerKey.security = alice.security(trusting: [])
        let unlisted = await #expect(throws: CourierError.self) { _ = try await Node.start(noPeerKey) }
        #expect(unlisted?.message.contains("bob") == true)

        var twice = configuration(id: "alice", directory: directory.sub("b"))
        twice.security = SecurityConfiguration(publicKey: alice.keys.publicKey.z85, secretKey: alice.keys.secretKey.z85,
                                               trustedPeers: ["bob": bob.keys.publicKey.z85, "bob2": bob.keys.publicKey.z85])
        let duplicate = await #expect(throws: CourierError.self) { _ = try await Node.start(twice) }
        #expect(duplicate?.message.contains("same key") == true)

        var mismatched = configuration(id: "alice", directory: directory.sub("c"))
        mismatched.security = SecurityConfiguration(publicKey: bob.keys.publicKey.z85, secretKey: alice.keys.secretKey.z85, trustedPeers: [:])
        let mismatch = await #expect(throws: CourierError.self) { _ = try await Node.start(mismatched) }
        #expect(mismatch?.code == .invalidConfiguration)
    }
}
