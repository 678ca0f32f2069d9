import CoreMetrics
import Logging
import ZeroMQ

/// The node's ZeroMQ authentication handler (ZAP, RFC 27), on the I/O thread.
///
/// libzmq asks it about every CURVE handshake on the node's sockets. It admits only keys on
/// the allow-list and answers with the node id bound to the key as the connection's user id;
/// the receiving side then refuses any frame whose routing id differs from that user id.
final class ZAPHandler {
    static let endpoint = "inproc://zeromq.zap.01"
    let socket: Socket
    private let keys: SecurityConfiguration.Keys
    private let core: NodeCore
    private let refusals = Counter(label: "courier_handshakes_refused_total")

    init(context: Context, keys: SecurityConfiguration.Keys, core: NodeCore) throws(ZeroMQError) {
        socket = try Socket(.reply, context: context)
        try socket.bind(Self.endpoint)
        self.keys = keys
        self.core = core
    }

    /// Answers every request waiting.
    func answerPending() {
        while let request = try? socket.tryReceive() {
            let reply = answer(request.frames)
            do { try socket.send(Message(reply)) } catch {
                core.logger.error("cannot answer an authentication request", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    /// The reply frames for one request: version, request id, status code, status text,
    /// user id, metadata.
    func answer(_ frames: [[UInt8]]) -> [[UInt8]] {
        let requestID = frames.count > 1 ? frames[1] : []
        func reply(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestID, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
            return reply("500", "malformed ZAP request")
        }
        let address = String(decoding: frames[3], as: UTF8.self)
        guard frames[5] == Array("CURVE".utf8), frames.count == 7, let key = try? CurveKey(bytes: frames[6]) else {
            refuse(key: "(none)", address: address, reason: "not a CURVE handshake")
            return reply("400", "CURVE required")
        }
        guard let id = keys.idByKey[key] else {
            refuse(key: key.z85, address: address, reason: "key not on the allow-list")
            return reply("400", "unknown key")
        }
        return reply("200", "OK", user: id)
    }

    private func refuse(key: String, address: String, reason: String) {
        refusals.increment()
        core.logger.warning("refused a handshake", metadata: ["key": "\(key)", "address": "\(address)", "reason": "\(reason)"])
        core.emit(.handshakeRefused(key: key, address: address))
    }
}
