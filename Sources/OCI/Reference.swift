/// An image reference as users write it: `[registry/]repository[:tag][@digest]`.
///
/// Parsed with Docker's rules, fully qualified:
///
/// | written | reference |
/// |---|---|
/// | `nginx` | `docker.io/library/nginx:latest` |
/// | `index.docker.io/x` | `docker.io/library/x:latest` |
/// | `ghcr.io/org/app:1.0` | `ghcr.io/org/app:1.0` |
/// | `localhost:5000/a/b@sha256:…` | `localhost:5000/a/b@sha256:…` |
///
/// The first path component is a registry when it contains `.` or `:` or is `localhost`.
/// Docker Hub's one-component names get `library/`; a reference with neither tag nor digest
/// gets the tag `latest`.
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    /// The registry host, with its port when one was written; lowercased. `docker.io` for Docker Hub.
    public var registry: String
    public var repository: RepositoryName
    public var tag: Tag?
    public var digest: Digest?

    /// Docker Hub's canonical registry name.
    public static let dockerHub = "docker.io"
    /// Other names of Docker Hub, normalized to ``dockerHub``.
    public static let dockerHubAliases: Set<String> = ["index.docker.io", "registry-1.docker.io"]

    public init(registry: String, repository: RepositoryName, tag: Tag? = nil, digest: Digest? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses a reference; `NAME_INVALID` for a bad registry or repository, `TAG_INVALID` for a
    /// bad tag, `DIGEST_INVALID` for a bad digest.
    public init(parsing string: String) throws(RegistryError) {
        guard !string.isEmpty else {
            throw RegistryError(.nameInvalid, "image reference is empty")
        }
        var remainder = Substring(string)
        var digest: Digest?
        if let at = remainder.firstIndex(of: "@") {
            digest = try Digest(parsing: String(remainder[remainder.index(after: at)...]))
            remainder = remainder[..<at]
        }
        var tag: Tag?
        if let colon = remainder.lastIndex(of: ":"), !remainder[colon...].contains("/") {
            tag = try Tag(String(remainder[remainder.index(after: colon)...]))
            remainder = remainder[..<colon]
        }

        var registry = Self.dockerHub
        var path = remainder
        if let slash = remainder.firstIndex(of: "/") {
            let first = remainder[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                registry = try Self.validatedRegistry(first)
                path = remainder[remainder.index(after: slash)...]
            }
        }
        if Self.dockerHubAliases.contains(registry) {
            registry = Self.dockerHub
        }
        var repository = String(path)
        if registry == Self.dockerHub, !path.isEmpty, !path.contains("/") {
            repository = "library/" + repository
        }
        self.registry = registry
        self.repository = try RepositoryName(repository)
        self.tag = tag ?? (digest == nil ? .latest : nil)
        self.digest = digest
    }

    /// `registry/repository`: the repository key used by policies, the cache and logs.
    public var repositoryKey: String { "\(registry)/\(repository.value)" }

    /// What to ask the registry for: the digest when there is one, else the tag.
    public var manifestReference: ManifestReference {
        if let digest {
            return .digest(digest)
        }
        return .tag(tag ?? .latest)
    }

    /// Fully qualified: `docker.io/library/nginx:latest`, `ghcr.io/a/b:1@sha256:…`.
    public var description: String {
        var text = repositoryKey
        if let tag {
            text += ":" + tag.value
        }
        if let digest {
            text += "@" + digest.description
        }
        return text
    }

    /// `host[:port]` with a DNS name or IPv4 host (or a bracketed IPv6 one), lowercased.
    private static func validatedRegistry(_ text: Substring) throws(RegistryError) -> String {
        func fail(_ reason: String) -> RegistryError {
            RegistryError(.nameInvalid, "registry \(RegistryError.quote(text)) is invalid: \(reason)")
        }
        var host = text
        var port: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else {
                throw fail("an IPv6 address needs a closing ']'")
            }
            let address = host[host.index(after: host.startIndex)..<close]
            guard !address.isEmpty, address.utf8.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") }) else {
                throw fail("the IPv6 address is malformed")
            }
            let rest = host[host.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else {
                    throw fail("unexpected text after the IPv6 address")
                }
                port = rest.dropFirst()
            }
            host = host[...close]
        } else {
            if let colon = host.firstIndex(of: ":") {
                port = host[host.index(after: colon)...]
                host = host[..<colon]
            }
            for label in host.split(separator: ".", omittingEmptySubsequences: false) {
                guard let first = label.utf8.first, let last = label.utf8.last,
                    first != UInt8(ascii: "-"), last != UInt8(ascii: "-"),
                    label.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") })
                else {
                    throw fail("a host name is dot-separated labels of letters, digits and '-'")
                }
            }
        }
        if let port {
            guard !port.isEmpty, port.utf8.count <= 5, port.utf8.allSatisfy({ (48...57).contains($0) }),
                let number = Int(port), (1...65535).contains(number)
            else {
                throw fail("the port must be a number from 1 to 65535")
            }
        }
        return text.lowercased()
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            false
        }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            false
        }
    }
}
