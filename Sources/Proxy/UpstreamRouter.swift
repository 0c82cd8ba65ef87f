import OCI
import Policies
import RegistryClient

/// Decides which upstream a `/v2/<name>/...` request goes to, and under which repository.
///
/// First match wins: the `ns` query parameter (containerd mirrors send it), then a first path
/// component naming a configured upstream (`ghcr.io/org/app`), then the default upstream.
/// A client can only choose among configured upstreams: an unknown `ns` is refused, never dialled.
public struct UpstreamRouter: Sendable {
    /// Where one request goes.
    public struct Route: Sendable {
        public let upstream: any Upstream
        /// The repository on the upstream, `library/` added on Docker Hub.
        public let repository: RepositoryName
        /// Only authenticated clients may pull from this upstream.
        public var isPrivate = false
        /// The upstream and the repository there: how policies, the cache and logs name it.
        public var key: RepositoryKey { RepositoryKey(upstream: upstream.name, repository: repository) }
        /// The name of the upstream it goes to, e.g. `docker.io`.
        public var upstreamName: String { upstream.name }
    }

    /// One configured upstream and the other host names clients know it by.
    public struct Entry: Sendable {
        public let upstream: any Upstream
        public let aliases: [String]
        /// Repository globs clients may pull (`library/*`, `team/**`); empty: all.
        public let allow: [Glob]
        /// Only authenticated clients may pull from this upstream.
        public let isPrivate: Bool

        public init(upstream: any Upstream, aliases: [String] = [], allow: [Glob] = [], isPrivate: Bool = false) {
            self.upstream = upstream
            self.aliases = aliases
            self.allow = allow
            self.isPrivate = isPrivate
        }
    }

    /// The configuration names an upstream that is not there.
    public struct UnknownUpstream: Error, CustomStringConvertible {
        public let name: String
        public var description: String { "default upstream '\(name)' is not among the configured upstreams" }
    }

    private let entries: [Entry]
    /// The configured upstreams, in the configuration's order.
    public var upstreams: [Entry] { entries }
    private let indexByHost: [String: Int]
    private let defaultIndex: Int

    public init(_ entries: [Entry], defaultUpstream: String) throws(UnknownUpstream) {
        var indexByHost: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            for host in [entry.upstream.name] + entry.aliases where indexByHost[host.lowercased()] == nil {
                indexByHost[host.lowercased()] = index
            }
        }
        guard let defaultIndex = indexByHost[defaultUpstream.lowercased()] else { throw UnknownUpstream(name: defaultUpstream) }
        self.entries = entries
        self.indexByHost = indexByHost
        self.defaultIndex = defaultIndex
    }

    public func route(_ name: RepositoryName, namespace: String?) throws(RegistryError) -> Route {
        if let namespace {
            guard let index = indexByHost[namespace.lowercased()] else {
                throw RegistryError(.nameUnknown, "registry '\(namespace)' (ns) is not an upstream of this mirror")
            }
            return try allowed(entries[index], name)
        }
        // `ghcr.io/org/app`: a first component that names an upstream (not the last component).
        if let index = indexByHost[String(name.firstComponent)], let rest = name.droppingFirstComponent {
            return try allowed(entries[index], rest)
        }
        return try allowed(entries[defaultIndex], name)
    }

    /// A client's route, refused when the upstream's allow list does not admit the repository.
    private func allowed(_ entry: Entry, _ name: RepositoryName) throws(RegistryError) -> Route {
        var route = try route(entry.upstream, name)
        route.isPrivate = entry.isPrivate
        guard entry.allow.isEmpty || entry.allow.contains(where: { $0.matches(route.repository.value) }) else {
            throw RegistryError(.denied, "\(route.key) is not among the repositories this mirror serves from \(entry.upstream.name)")
        }
        return route
    }

    /// The route to a repository on the upstream known by `host` (a policy member, a recorded
    /// source); nil when no configured upstream has that name.
    public func route(upstream host: String, repository: RepositoryName) -> Route? {
        guard let index = indexByHost[host.lowercased()], var route = try? route(entries[index].upstream, repository) else {
            return nil
        }
        route.isPrivate = entries[index].isPrivate
        return route
    }

    private func route(_ upstream: any Upstream, _ name: RepositoryName) throws(RegistryError) -> Route {
        guard upstream.name == "docker.io", !name.value.utf8.contains(UInt8(ascii: "/")) else {
            return Route(upstream: upstream, repository: name)
        }
        // Docker Hub's official images; the longer name is checked again (its length).
        return Route(upstream: upstream, repository: try RepositoryName("library/" + name.value))
    }
}
