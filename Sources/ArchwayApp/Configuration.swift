import Foundation
import NIOCore
import Policies
import ProxyServer
import SharedState

/// Archway's configuration: the `archway.yaml` of DESIGN.md, validated.
public struct Configuration: Sendable, Hashable {
    public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Parses `HOST:PORT`, `[::1]:PORT` or `:PORT` (all interfaces).
        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
            else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.host = host.isEmpty ? "0.0.0.0" : host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public struct Upstream: Sendable, Hashable {
        /// The registry host clients know, e.g. `docker.io`.
        public var name: String
        /// Where Archway fetches, e.g. `https://registry-1.docker.io`.
        public var url: String
        public var aliases: [String]
        public var username: String?
        public var password: String?
        /// Repository globs clients may pull from this upstream; empty: all.
        public var allow: [String] = []
        /// Only authenticated clients may pull from this upstream.
        public var isPrivate = false
        /// Token services besides the upstream's own host that get its credentials.
        public var tokenHosts: [String] = []
        /// Hosts a redirect may reach even on this machine, loopback or link-local.
        public var redirectHosts: [String] = []

        public init(name: String, url: String, aliases: [String] = [], username: String? = nil, password: String? = nil) {
            self.name = name
            self.url = url
            self.aliases = aliases
            self.username = username
            self.password = password
        }
    }

    /// TLS termination: PEM files; with `clientCA`, clients must present a certificate it signed.
    public struct TLS: Sendable, Hashable {
        public var certificate: String
        public var key: String
        public var clientCA: String?

        public init(certificate: String, key: String, clientCA: String? = nil) {
            self.certificate = certificate
            self.key = key
            self.clientCA = clientCA
        }
    }

    /// Clients' credentials: bcrypt entries of an htpasswd file.
    /// The proxy listener: where it listens, its CA, the hosts it tunnels unread, and whether
    /// clients must present `Proxy-Authorization`.
    public struct Proxy: Sendable, Hashable {
        public var listen: ListenAddress
        public var certificate: String
        public var key: String
        public var tunnels: [ProxyGate.TunnelEntry]
        public var authenticate: Bool

        public init(
            listen: ListenAddress, certificate: String, key: String, tunnels: [ProxyGate.TunnelEntry] = [], authenticate: Bool = false
        ) {
            self.listen = listen
            self.certificate = certificate
            self.key = key
            self.tunnels = tunnels
            self.authenticate = authenticate
        }
    }

    public struct Authentication: Sendable, Hashable {
        public var users: [String: String]
        /// Every pull needs credentials (otherwise only private upstreams do).
        public var required: Bool
        /// The users who alone may read the operator's endpoints (`/_archway/*` but health and
        /// readiness, `/metrics`); empty: anyone may.
        public var admins: [String]

        public init(users: [String: String], required: Bool, admins: [String] = []) {
            self.users = users
            self.required = required
            self.admins = admins
        }
    }

    /// `storage.s3`: every blob in a bucket, this machine's disk the hot ones (a replica's tiers).
    public struct ObjectStorage: Sendable, Hashable {
        /// `http(s)://host[:port]`.
        public var endpoint: String
        public var region: String
        public var bucket: String
        public var accessKey: String
        public var secretKey: String
        /// The bucket in the path (Ceph, MinIO) rather than in the host name (AWS).
        public var pathStyle: Bool
        /// The bucket's size limit, least recently used content evicted across the fleet.
        public var maxSize: Int64?
        /// Clients get a presigned URL of the bucket for blobs not on this disk.
        public var redirect: Bool

        public init(
            endpoint: String, region: String = "us-east-1", bucket: String, accessKey: String, secretKey: String, pathStyle: Bool = true,
            maxSize: Int64? = nil, redirect: Bool = false
        ) {
            self.endpoint = endpoint
            self.region = region
            self.bucket = bucket
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.pathStyle = pathStyle
            self.maxSize = maxSize
            self.redirect = redirect
        }
    }

    public var listen: ListenAddress
    public var tls: TLS?
    public var authentication: Authentication?
    public var storagePath: String
    /// Least recently used content is evicted above this many bytes (with `objectStorage`: the
    /// local tier's limit; the bucket has its own).
    public var storageMaxSize: Int64?
    public var objectStorage: ObjectStorage?
    /// `catalog.postgres`: the catalog every replica shares (needs `objectStorage`); nil: SQLite
    /// in the storage folder.
    public var catalogDatabase: DatabaseAddress?

    /// `replica`: how this Archway takes part in a fleet sharing the bucket and the catalog.
    public struct Replica: Sendable, Hashable {
        /// A name for logs and leases (unique in the fleet).
        public var name: String
        /// Where the other replicas reach this one (`http://10.0.0.5:5000`).
        public var advertiseURL: String
        /// The secret every replica shares; it authenticates their requests to each other.
        public var secret: String

        public init(name: String, advertiseURL: String, secret: String) {
            self.name = name
            self.advertiseURL = advertiseURL
            self.secret = secret
        }
    }

    /// With `catalogDatabase`: one upstream download per blob for the whole fleet.
    public var replica: Replica?
    public var upstreams: [Upstream]
    public var defaultUpstream: String
    public var tagTTL: Duration
    public var offline: Bool
    public var policiesPath: String?
    /// Whether a pull that does not fit the client's platform gets a `Warning: 299` header.
    public var mismatchWarning = true
    /// What a client whose platform is stated gets when a tag has no image for it: the image with
    /// a warning, or a refusal at pull time (`mismatch:`; a policy rule may say otherwise).
    public var mismatch: MismatchAction = .warn
    /// `admin-listen`: the operator's endpoints on this address alone (the main listener then
    /// serves only the registry, health and readiness); nil: on the main listener.
    public var adminListen: ListenAddress?
    /// `proxy:`: a listener for clients that use Archway as their HTTPS proxy; nil: none.
    public var proxy: Proxy?
    /// Whether images' binaries are scanned in the background, and the bytes read of a layer at
    /// most (`binaries:`).
    public var binaries = Binaries()
    /// How long SIGTERM waits for in-flight responses and downloads before ending them.
    public var shutdownTimeout: Duration = .seconds(30)
    /// Threads answering connections (`event-loops:`); nil: one per core.
    public var eventLoops: Int?
    /// How long connecting to an upstream may take.
    public var connectTimeout: Duration = .seconds(10)
    /// An upstream transfer that moves nothing for this long is abandoned.
    public var stallTimeout: Duration = .seconds(30)
    /// What clients may hold: connections, timeouts, HTTP/2 streams (`limits:`).
    public var connectionLimits = ConnectionLimits()
    /// Responses whose body streams through memory at once (TLS, HTTP/2, downloads in progress);
    /// sendfile responses do not count.
    public var streamedResponses = 512

    public init(
        listen: ListenAddress,
        storagePath: String,
        storageMaxSize: Int64? = nil,
        upstreams: [Upstream],
        defaultUpstream: String,
        tagTTL: Duration = .seconds(300),
        offline: Bool = false,
        policiesPath: String? = nil
    ) {
        self.listen = listen
        self.storagePath = storagePath
        self.storageMaxSize = storageMaxSize
        self.upstreams = upstreams
        self.defaultUpstream = defaultUpstream
        self.tagTTL = tagTTL
        self.offline = offline
        self.policiesPath = policiesPath
    }

    /// The configuration `archway serve` runs on without `--config`: plain HTTP on 127.0.0.1:5000,
    /// storage in the user's cache folder, `./policies` when present, the public registries.
    public static func embeddedDefault(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath
    ) -> Configuration {
        let cacheHome =
            environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache")
        let policies = currentDirectory + "/policies"
        var isDirectory: ObjCBool = false
        let hasPolicies = FileManager.default.fileExists(atPath: policies, isDirectory: &isDirectory) && isDirectory.boolValue
        return Configuration(
            listen: ListenAddress(host: "127.0.0.1", port: 5000),
            storagePath: cacheHome + "/archway",
            upstreams: [
                Upstream(name: "docker.io", url: "https://registry-1.docker.io", aliases: ["index.docker.io", "registry-1.docker.io"]),
                Upstream(name: "ghcr.io", url: "https://ghcr.io"),
                Upstream(name: "quay.io", url: "https://quay.io"),
                Upstream(name: "registry.k8s.io", url: "https://registry.k8s.io"),
                Upstream(name: "gcr.io", url: "https://gcr.io"),
                Upstream(name: "public.ecr.aws", url: "https://public.ecr.aws"),
                Upstream(name: "mcr.microsoft.com", url: "https://mcr.microsoft.com"),
            ],
            defaultUpstream: "docker.io",
            policiesPath: hasPolicies ? policies : nil
        )
    }
}

extension Configuration {
    /// Every host name clients know the upstreams by (names and aliases).
    public var upstreamHosts: Set<String> {
        Set(upstreams.flatMap { [$0.name] + $0.aliases })
    }

    /// The rules of the policies folder; an empty set when there is none.
    public func loadPolicies() throws(PolicyLoader.Failure) -> PolicySet {
        guard let policiesPath else { return .empty }
        return try PolicyLoader(upstreams: upstreamHosts).load(paths: [policiesPath])
    }
}

extension Configuration {
    /// `binaries:`: the background scan of images' binaries (on by default).
    public struct Binaries: Sendable, Hashable {
        public var verify = true
        /// Decompressed bytes read of one layer at most.
        public var maxLayerSize: Int64 = 4 << 30

        public init() {}
    }
}
