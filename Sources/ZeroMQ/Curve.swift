import CZeroMQ

/// A CurveZMQ key: 32 bytes, written as 40 characters of Z85 text.
public struct CurveKey: Sendable, Hashable, CustomStringConvertible {
    /// The size of a key in bytes.
    public static let byteCount = 32
    /// The size of a key in Z85 text.
    public static let z85Count = 40
    private static let z85Alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// The key's raw bytes.
    public let bytes: [UInt8]

    /// A key from its 32 raw bytes.
    public init(bytes: [UInt8]) throws(ZeroMQError) {
        guard bytes.count == Self.byteCount else {
            throw .usage(.invalidArgument, "a CURVE key has 32 bytes, not \(bytes.count)", "CurveKey")
        }
        self.bytes = bytes
    }

    /// A key from its 40-character Z85 text (surrounding white space is ignored).
    public init(z85 text: some StringProtocol) throws(ZeroMQError) {
        let trimmed = text.utf8.drop { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
        var characters = Array(trimmed)
        while let last = characters.last, last == 32 || last == 9 || last == 10 || last == 13 {
            characters.removeLast()
        }
        guard characters.count == Self.z85Count, characters.allSatisfy(Self.z85Alphabet.contains) else {
            throw .usage(.invalidArgument,
                         "a CURVE key in Z85 is 40 characters of the Z85 alphabet", "zmq_z85_decode")
        }
        characters.append(0)
        var decoded = [UInt8](repeating: 0, count: Self.byteCount)
        let ok = characters.withUnsafeBufferPointer { text in
            decoded.withUnsafeMutableBufferPointer { out in
                text.withMemoryRebound(to: CChar.self) { zmq_z85_decode(out.baseAddress, $0.baseAddress) != nil }
            }
        }
        guard ok else {
            throw .usage(.invalidArgument, "the text is not a valid Z85 key", "zmq_z85_decode")
        }
        self.bytes = decoded
    }

    /// The key as 40 characters of Z85 text.
    public var z85: String {
        var text = [CChar](repeating: 0, count: Self.z85Count + 1)
        bytes.withUnsafeBufferPointer { key in
            _ = zmq_z85_encode(&text, key.baseAddress, key.count)
        }
        return String(decoding: text.prefix(Self.z85Count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The Z85 text. A secret key prints as itself: keep secret keys out of logs.
    public var description: String { z85 }
}

/// A CurveZMQ long-term key pair.
public struct CurveKeyPair: Sendable, Hashable {
    /// The key to give to peers.
    public let publicKey: CurveKey
    /// The key to keep secret.
    public let secretKey: CurveKey

    /// A pair from its two keys (``CurveKeyPair/generate()`` makes a new one).
    public init(publicKey: CurveKey, secretKey: CurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A new random key pair (`zmq_curve_keypair`).
    /// - Throws: ``ZeroMQError/Code/notSupported`` when libzmq was built without CURVE.
    public static func generate() throws(ZeroMQError) -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: CurveKey.z85Count + 1)
        var secretText = [CChar](repeating: 0, count: CurveKey.z85Count + 1)
        guard zmq_curve_keypair(&publicText, &secretText) == 0 else { throw .last("zmq_curve_keypair") }
        func key(_ text: [CChar]) throws(ZeroMQError) -> CurveKey {
            try CurveKey(z85: String(decoding: text.prefix(CurveKey.z85Count).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return CurveKeyPair(publicKey: try key(publicText), secretKey: try key(secretText))
    }

    /// The pair whose public key belongs to `secretKey` (`zmq_curve_public`).
    public init(secretKey: CurveKey) throws(ZeroMQError) {
        var publicText = [CChar](repeating: 0, count: CurveKey.z85Count + 1)
        let secretText = Array(secretKey.z85.utf8CString)
        guard zmq_curve_public(&publicText, secretText) == 0 else { throw .last("zmq_curve_public") }
        self.publicKey = try CurveKey(
            z85: String(decoding: publicText.prefix(CurveKey.z85Count).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        self.secretKey = secretKey
    }
}

/// What the linked libzmq is and can do.
public enum Capabilities {
    /// libzmq's version, such as (4, 3, 4).
    public static var version: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }

    /// Whether libzmq supports `capability` (`zmq_has`): "curve", "ipc", "gssapi", "draft"…
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) != 0
    }

    /// Whether CurveZMQ security is available.
    public static var hasCurve: Bool { has("curve") }
}
