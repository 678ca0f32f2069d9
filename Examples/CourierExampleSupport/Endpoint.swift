/// Checks the endpoints given on the example programs' command lines, so that a typo is one
/// clear line (and exit code 2) instead of a ZeroMQ error after the node has started.
public enum Endpoint {
    /// Returns nil when `endpoint` is usable, or a sentence saying what is wrong with it.
    ///
    /// Accepted: `tcp://HOST:PORT` (a numeric port; `HOST` a name, an IPv4 address or an IPv6
    /// address in brackets; when listening, `*` for every interface and port 0 is allowed)
    /// and `ipc://PATH`.
    public static func problem(with endpoint: String, listening: Bool) -> String? {
        let example = listening ? "tcp://127.0.0.1:7001" : "tcp://127.0.0.1:7001 or ipc:///tmp/courier.sock"
        if endpoint.hasPrefix("ipc://") {
            return endpoint.count > "ipc://".count ? nil : "the endpoint \(endpoint) has no path; write it as ipc:///tmp/courier.sock"
        }
        guard endpoint.hasPrefix("tcp://") else {
            return "the endpoint \"\(endpoint)\" is neither tcp://HOST:PORT nor ipc://PATH (for example \(example))"
        }
        let rest = endpoint.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else {
            return "the endpoint \(endpoint) has no port; write it as tcp://HOST:PORT (for example \(example))"
        }
        let host = rest[..<colon]
        let port = rest[rest.index(after: colon)...]
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else {
            return "the endpoint \(endpoint) has no valid host; write it as tcp://HOST:PORT (for example \(example))"
        }
        if host == "*" && !listening {
            return "the endpoint \(endpoint) cannot connect to *; name the host, as in \(example)"
        }
        if host.contains(":") && !(host.hasPrefix("[") && host.hasSuffix("]")) {
            return "the endpoint \(endpoint) has an IPv6 host without brackets; write it as tcp://[::1]:7001"
        }
        guard let number = Int(port), port.allSatisfy(\.isASCII), (listening ? 0 : 1)...65535 ~= number else {
            return "the endpoint \(endpoint) has no valid port (\"\(port)\" is not a number from \(listening ? 0 : 1) to 65535)"
        }
        return nil
    }
}
