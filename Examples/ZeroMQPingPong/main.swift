// A tour of the ZeroMQ layer: a DEALER talks to a ROUTER over loopback TCP, with a socket
// monitor and a poller, and everything that happens is printed. `tools/demo` runs it.
import ZeroMQ

let context = try Context()
let router = try Socket(.router, context: context)
try router.set(.routerMandatory, true)
try router.bind("tcp://127.0.0.1:*")
let endpoint = try router.lastEndpoint() ?? "?"
print("ROUTER bound to \(endpoint) (port chosen by the system)")

let dealer = try Socket(.dealer, context: context)
try dealer.set(.routingID, Array("pinger".utf8))
try dealer.set(.heartbeatInterval, .seconds(1))
let monitor = try dealer.monitor()
try dealer.connect(endpoint)
print("DEALER 'pinger' connecting; monitor events:")
try monitor.socket.set(.receiveTimeout, .seconds(5))
while true {
    let event = try monitor.receive()
    print("  \(event)")
    if event.kind == .handshakeSucceeded { break }
}

let poller = try Poller()
poller.register(router)
poller.register(dealer)
let clock = ContinuousClock()
for round in 1...5 {
    let started = clock.now
    try dealer.send(["ping".utf8.map { $0 }, Array("round \(round)".utf8)])
    var replied = false
    while !replied {
        let ready = try poller.poll(timeout: .seconds(5))
        guard !ready.timedOut else { fatalError("no reply within 5 s") }
        if ready.isReadable(router), let request = try router.tryReceive() {
            let sender = String(decoding: request.frames[0], as: UTF8.self)
            let body = request.frames.dropFirst().map { String(decoding: $0, as: UTF8.self) }
            print("ROUTER got \(body) from '\(sender)'; replying")
            try router.send(Message([request.frames[0], Array("pong".utf8)] + request.frames.dropFirst(2)))
        }
        if ready.isReadable(dealer), let reply = try dealer.tryReceive() {
            let body = reply.frames.map { String(decoding: $0, as: UTF8.self) }
            print("DEALER got \(body) after \(clock.now - started)")
            replied = true
        }
    }
}
let big = [UInt8](repeating: 7, count: 16 << 20)
try dealer.send([big])
let received = try router.receive()
print("ROUTER received a \(received.frames[1].count)-byte frame in one piece")

let libzmq = Capabilities.version
print("libzmq \(libzmq.major).\(libzmq.minor).\(libzmq.patch), CURVE \(Capabilities.hasCurve ? "available" : "missing")")
if Capabilities.hasCurve {
    let pair = try CurveKeyPair.generate()
    print("a fresh CURVE public key: \(pair.publicKey.z85)")
}
monitor.close()
dealer.close()
router.close()
print("closed cleanly")
