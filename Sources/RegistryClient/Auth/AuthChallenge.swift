/// A `WWW-Authenticate` challenge from a registry.
public struct AuthChallenge: Sendable, Hashable {
    public enum Scheme: Sendable, Hashable {
        case basic
        case bearer
        case other(String)
    }

    public var scheme: Scheme
    /// Lowercased parameter names: `realm`, `service`, `scope`, ...
    public var parameters: [String: String]

    public init(scheme: Scheme, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Parses `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.
    /// Quoted values may contain commas and escaped quotes. Returns nil for an empty header.
    public init?(header: String) {
        var rest = Substring(header).drop { $0 == " " }
        let schemeName = rest.prefix { $0 != " " }
        guard !schemeName.isEmpty else { return nil }
        rest = rest.dropFirst(schemeName.count)
        switch schemeName.lowercased() {
        case "basic": scheme = .basic
        case "bearer": scheme = .bearer
        default: scheme = .other(String(schemeName))
        }
        var parameters: [String: String] = [:]
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingSpaces().lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        value.append(character)
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        break
                    } else {
                        value.append(character)
                    }
                }
            } else {
                let raw = rest.prefix { $0 != "," }
                value = raw.trimmingSpaces()
                rest = rest.dropFirst(raw.count)
            }
            if !key.isEmpty { parameters[key] = value }
        }
        self.parameters = parameters
    }
}
