/// What the proxy listener does with a request head: a closed world.
///
/// - A CONNECT to a configured upstream's name or alias (port 443, or the port of its URL) is
///   intercepted: TLS ends here and the requests inside go the mirror's way, to that upstream.
/// - An absolute-form `GET http://name/...` to a configured upstream reached over plain HTTP is
///   served the same way.
/// - A CONNECT that a `proxy.tunnel` entry admits is tunnelled byte for byte, unread.
/// - Everything else is refused before anything is dialled: other hosts, IP addresses, other
///   ports, other methods.
public struct ProxyGate: Sendable {
    public enum Decision: Sendable, Equatable {
        /// `host`: the name the leaf is for; `upstream`: the configured name requests route to
        /// (`registry.internal:5000` for a CONNECT to `registry.internal:5000`).
        case intercept(host: String, upstream: String)
        case forward(host: String, upstream: String)
        /// `exact`: the entry named the host without a wildcard (only such an entry may lead to
        /// a loopback address).
        case tunnel(host: String, port: Int, exact: Bool)
        case refuse(status: Int, reason: String)
    }

    /// A configured upstream as clients name it.
    public struct Upstream: Sendable {
        public var hosts: [String]
        /// Its URL: `https://ghcr.io`, `http://registry.lan:5000`.
        public var url: String
        public init(hosts: [String], url: String) {
            self.hosts = hosts
            self.url = url
        }
    }

    /// A `proxy.tunnel` entry: `host`, `*.domain.tld` or either with `:port` (443 otherwise).
    public struct TunnelEntry: Sendable, Hashable, CustomStringConvertible {
        public let pattern: String
        public let port: Int
        public var description: String { port == 443 ? pattern : "\(pattern):\(port)" }
        public var isExact: Bool { !pattern.hasPrefix("*.") }

        /// Nil when `text` is not such an entry; a bare `*` (an open proxy) is not one.
        public init?(_ text: String) {
            let wildcard = text.hasPrefix("*.")
            let name = wildcard ? "wildcard" + text.dropFirst() : Substring(text)
            guard !name.contains("*"), let (host, port, isAddress) = try? ProxyRequestHead.authority(String(name), defaultPort: 443),
                !isAddress,
                // A wildcard stays below a registrable domain: `*.example.com`, never `*.com`.
                !wildcard || host.split(separator: ".").count >= 3
            else { return nil }
            self.port = port
            self.pattern = wildcard ? "*" + host.dropFirst("wildcard".count) : host
        }

        func admits(_ host: String, _ port: Int) -> Bool {
            guard port == self.port else { return false }
            if pattern.hasPrefix("*.") { return host.hasSuffix(pattern.dropFirst()) }
            return host == pattern
        }
    }

    /// host → port → the configured name, for CONNECTs and for absolute-form requests.
    private let intercepted: [String: [Int: String]]
    private let plain: [String: [Int: String]]
    private let tunnels: [TunnelEntry]

    public init(upstreams: [Upstream], tunnels: [TunnelEntry]) {
        var intercepted: [String: [Int: String]] = [:]
        var plain: [String: [Int: String]] = [:]
        for upstream in upstreams {
            let lowered = upstream.url.lowercased()
            let isPlain = lowered.hasPrefix("http://")
            let urlPort = Self.port(of: lowered)
            for name in upstream.hosts {
                // A name may carry a port (`registry.internal:5000`): clients CONNECT to that port
                // (and to that port only); a bare name is reached on 443 or its URL's port.
                let (host, namedPort) = Self.split(name)
                let ports = namedPort.map { [$0] } ?? [443] + (urlPort.map { [$0] } ?? [])
                for port in ports where intercepted[host]?[port] == nil { intercepted[host, default: [:]][port] = name }
                if isPlain {
                    for port in namedPort.map({ [$0] }) ?? [80] + (urlPort.map { [$0] } ?? []) where plain[host]?[port] == nil {
                        plain[host, default: [:]][port] = name
                    }
                }
            }
        }
        self.intercepted = intercepted
        self.plain = plain
        self.tunnels = tunnels
    }

    public func decide(_ head: ProxyRequestHead) -> Decision {
        if head.isAddress {
            return .refuse(status: 403, reason: "\(head.host) is an address: this proxy serves configured registries by name only")
        }
        if head.method != "CONNECT" {
            guard head.method == "GET" || head.method == "HEAD" else {
                return .refuse(status: 405, reason: "this proxy reads registries: \(head.method) is not supported")
            }
            guard let upstream = plain[head.host]?[head.port] else {
                return .refuse(status: 403, reason: "\(head.host):\(head.port) is not a plain-HTTP upstream of this mirror")
            }
            return .forward(host: head.host, upstream: upstream)
        }
        if let upstream = intercepted[head.host]?[head.port] { return .intercept(host: head.host, upstream: upstream) }
        if let entry = tunnels.first(where: { $0.admits(head.host, head.port) }) {
            return .tunnel(host: head.host, port: head.port, exact: entry.isExact)
        }
        if intercepted[head.host] != nil {
            let ports = intercepted[head.host, default: [:]].keys.sorted().map(String.init).joined(separator: ", ")
            return .refuse(status: 403, reason: "\(head.host) is served on port \(ports), not \(head.port)")
        }
        return .refuse(
            status: 403, reason: "\(head.host):\(head.port) is neither an upstream of this mirror nor a host proxy.tunnel lists")
    }

    /// An upstream name's host, lowercased, and its port if it names one.
    public static func split(_ name: String) -> (host: String, port: Int?) {
        guard let parsed = try? ProxyRequestHead.authority(name, defaultPort: -1) else { return (name.lowercased(), nil) }
        return (parsed.host, parsed.port == -1 ? nil : parsed.port)
    }

    /// The explicit port of a URL such as `https://host:8443/path`.
    private static func port(of url: String) -> Int? {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        let authority = url[schemeEnd.upperBound...].prefix { $0 != "/" }
        guard let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") else { return nil }
        return Int(authority[authority.index(after: colon)...])
    }
}
