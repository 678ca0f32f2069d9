import Courier
import Foundation
import Logging
import ServiceLifecycle

// What a new user does first, checked end to end: two services exchange orders (sent
// through a Publisher, received in batches) with
// outcomes (processed, and rejected with a reason), and a node in a ServiceGroup ends with
// the group when a sibling fails. Exits 0 when all of it holds, 1 with the reason otherwise.

struct Order: Codable, Equatable {
    var id: Int
    var item: String
}

struct Check: Error, CustomStringConvertible {
    var description: String
}

func expect(_ condition: Bool, _ what: @autoclosure () -> String) throws {
    if !condition { throw Check(description: what()) }
}

/// Runs `body`, failing if it takes longer than `limit` (a hang must fail, not wait forever).
func within<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: limit); return nil }
        defer { group.cancelAll() }
        guard let result = try await group.next(), let value = result else {
            throw Check(description: "\(what) did not finish within \(limit)")
        }
        return value
    }
}

func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard bound == 0, named == 0 else { throw Check(description: "no free loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

struct FailingSibling: Service {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "the sibling service failed on purpose" }
    }
    func run() async throws {
        try await Task.sleep(for: .milliseconds(200))
        throw Failure()
    }
}

var logger = Logger(label: "adopter")
logger.logLevel = .warning
let root = FileManager.default.temporaryDirectory.appendingPathComponent("courier-adopter-\(getpid())").path
defer { try? FileManager.default.removeItem(atPath: root) }
let endpoint = "tcp://127.0.0.1:\(try freePort())"

do {
    // 1. Two services: "shop" sends orders to "ledger"; the ledger refuses negative ids.
    var ledgerConfiguration = NodeConfiguration(id: "ledger", dataDirectory: root + "/ledger")
    ledgerConfiguration.listen = [endpoint]
    ledgerConfiguration.logger = logger
    let ledger = try await Node.start(ledgerConfiguration)

    var shopConfiguration = NodeConfiguration(id: "shop", dataDirectory: root + "/shop")
    shopConfiguration.peers = [PeerConfiguration(id: "ledger", endpoints: [endpoint])]
    shopConfiguration.logger = logger
    let shop = try await Node.start(shopConfiguration)

    let consumer = Task {
        // In batches: whatever has arrived, at most what is still expected.
        var seen: [Order] = []
        var messages = ledger.messages.makeAsyncIterator()
        while seen.count < 3, let batch = await messages.next(upTo: 3 - seen.count) {
            for message in batch {
                let order = try message.decode(Order.self, decoder: JSONDecoder())
                seen.append(order)
                if order.id < 0 {
                    message.reject(reason: "négatif: l'identifiant \(order.id) n'existe pas")
                } else {
                    message.acknowledge()
                }
            }
        }
        return seen
    }
    let orders = [Order(id: 1, item: "book"), Order(id: -2, item: "ghost"), Order(id: 3, item: "pen")]
    // A stream of sends from one loop: a Publisher, flushed, then each message's receipt.
    let publisher = shop.publisher(to: "ledger")
    var pending: [PendingReceipt] = []
    for order in orders { pending.append(try await publisher.send(order, encoder: JSONEncoder())) }
    try await publisher.flush()
    var receipts: [Receipt] = []
    for item in pending { receipts.append(try await item.stored()) }
    let sent = receipts
    let outcomes = try await within(.seconds(30), "outcomes of three orders") { try await sent.outcomes() }
    try expect(outcomes == [.processed, .rejected(reason: "négatif: l'identifiant -2 n'existe pas"), .processed],
               "outcomes were \(outcomes)")
    let seen = try await within(.seconds(10), "the ledger's three orders") { try await consumer.value }
    try expect(seen == orders, "the ledger saw \(seen)")
    print("round trip: 3 orders, outcomes \(outcomes)")
    try await within(.seconds(10), "shop drains") { try await shop.waitUntilDelivered(to: "ledger") }
    await shop.shutdown()
    await ledger.shutdown()

    // 2. A node in a ServiceGroup whose sibling fails: the group ends at once and rethrows
    //    the sibling's error (the node stops; nothing it accepted is lost).
    var serviceConfiguration = NodeConfiguration(id: "service", dataDirectory: root + "/service")
    serviceConfiguration.peers = [PeerConfiguration(id: "ledger", endpoints: [endpoint])]  // down now
    serviceConfiguration.logger = logger
    let node = try await Node.start(serviceConfiguration, shutdownGracePeriod: .seconds(60))
    _ = try await node.send("held for later", to: "ledger")
    let group = ServiceGroup(configuration: .init(
        services: [.init(service: node), .init(service: FailingSibling())], logger: logger))
    let started = ContinuousClock.now
    let groupError: String = try await within(.seconds(10), "the service group") {
        do {
            try await group.run()
            return "none"
        } catch {
            return "\(error)"
        }
    }
    try expect(groupError == "the sibling service failed on purpose", "the group ended with: \(groupError)")
    print("service group: ended after \(ContinuousClock.now - started) with the sibling's error")
    print("adopter: all checks passed")
} catch {
    FileHandle.standardError.write(Data("adopter: FAILED: \(error)\n".utf8))
    exit(1)
}
