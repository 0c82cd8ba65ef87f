import Foundation

/// The parts of an absolute `http(s)` URL that redirect and credential decisions look at.
struct URLParts: Hashable {
    var scheme: String
    /// Host with port, lowercased: `registry-1.docker.io`, `127.0.0.1:5000`.
    var authority: String

    init?(_ url: String) {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        self.authority = authority.lowercased()
    }

    var origin: String { "\(scheme)://\(authority)" }

    /// The host without its port.
    var host: String {
        if authority.hasPrefix("[") {
            return String(authority.prefix { $0 != "]" }) + "]"
        }
        return String(authority.prefix { $0 != ":" })
    }

    /// Whether credentials meant for `self` may be sent to `other`: the same host, or two DNS
    /// names under the same last two labels (`registry-1.docker.io` and `auth.docker.io`).
    /// IP addresses and single-label names match only themselves.
    func sharesDomain(with other: URLParts) -> Bool {
        if host == other.host { return true }
        func domain(_ host: String) -> String? {
            let labels = host.split(separator: ".")
            let isAddress = host.hasPrefix("[") || labels.allSatisfy { $0.allSatisfy(\.isNumber) }
            guard labels.count >= 2, !isAddress else { return nil }
            return labels.suffix(2).joined(separator: ".")
        }
        guard let mine = domain(host), let theirs = domain(other.host) else { return false }
        return mine == theirs
    }

    /// Resolves a `Location` header against the URL it came from.
    static func resolve(_ location: String, against base: String) -> String? {
        if URLParts(location) != nil { return location }
        guard location.hasPrefix("/"), !location.hasPrefix("//"), let parts = URLParts(base) else { return nil }
        return parts.origin + location
    }
}
