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

    /// Resolves a `Location` header against the URL it came from.
    static func resolve(_ location: String, against base: String) -> String? {
        if URLParts(location) != nil { return location }
        guard location.hasPrefix("/"), !location.hasPrefix("//"), let parts = URLParts(base) else { return nil }
        return parts.origin + location
    }
}
