import Cache
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import InterceptionCA
import LayerInspection
import Logging
import NIOCore
import OCI
import ObjectStorage
import Policies
import Prometheus
import Proxy
import ProxyServer
import RegistryClient
import ServiceLifecycle
import SharedState

/// The composition root: turns a ``Configuration`` into the running mirror.
///
/// `archway serve` and the tests start Archway through this one function, so what is tested is
/// what runs.
public enum ArchwayServer {
    /// Builds the application. `onListening` receives the bound address, which is how a caller
    /// that asked for port 0 learns the port. `router` replaces the configured upstreams (tests
    /// inject in-memory ones).
    public static func makeApplication(
        configuration: Configuration,
        transport: (any HTTPTransport)? = nil,
        router: UpstreamRouter? = nil,
        metrics: PrometheusCollectorRegistry? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (String) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        // The server's downloads are child tasks of a service, so shutdown waits for them.
        let downloads = DownloadRunner.group()
        let (registry, evictor) = try makeRegistry(
            configuration: configuration, transport: transport, router: router, downloads: downloads, logger: logger)
        if !registry.policies.rules.isEmpty {
            logger.notice("policies loaded", metadata: ["rules": "\(registry.policies.rules.map(\.name).joined(separator: ","))"])
        }
        let maintenance = CacheMaintenance(
            evictor: evictor,
            interval: .seconds(10),
            logger: logger
        )
        let listen = configuration.listen
        // With TLS: HTTP/1.1 and HTTP/2, chosen by ALPN. Either way within the connection limits.
        let limits = configuration.connectionLimits
        let limiter = ConnectionLimiter(limit: limits.maxConnections)
        func serverBuilder(_ limiter: ConnectionLimiter, warmPath: WarmManifestPath?) throws -> HTTPServerBuilder {
            if let tls = configuration.tls {
                return .guardedTLS(tlsConfiguration: try tls.serverConfiguration(), limiter: limiter, limits: limits, warmPath: warmPath)
            }
            return .guardedHTTP1Sendfile(limiter: limiter, limits: limits, warmPath: warmPath)
        }
        FileDescriptorLimit.raise(logger: logger)
        var metricsText: (@Sendable () async -> String)?
        if let metrics {
            metricsText = {
                await registry.recordGauges()
                return metrics.emitToString()
            }
        }
        let authentication = configuration.clientAuthentication
        let budget = StreamingBudget(limit: configuration.streamedResponses)
        func responder(_ surface: RegistryResponder.Surface) -> RegistryResponder {
            RegistryResponder(
                registry: registry,
                warnMismatches: configuration.mismatchWarning,
                advisor: MismatchAdvisor(router: registry.router, catalog: evictor.catalog, offline: configuration.offline),
                metricsText: metricsText,
                authentication: authentication,
                streamingBudget: budget,
                writeTimeout: limits.writeTimeout,
                peerSecret: configuration.replica.map { Array($0.secret.utf8) },
                surface: surface
            )
        }
        let mainResponder = responder(configuration.adminListen == nil ? .everything : .registry)
        let server = try serverBuilder(limiter, warmPath: warmPathEnabled ? mainResponder.warmPath(logger: logger) : nil)
        var services: [any Service] = [
            maintenance,
            PolicyReloader(configuration: configuration, store: registry.policyStore, logger: logger),
            DownloadService(runner: downloads, registry: registry, bound: configuration.shutdownTimeout, logger: logger),
        ]
        if let binaries = registry.binaries { services.append(BinaryScanService(verifier: binaries)) }
        // `admin-listen`: the operator's endpoints on a listener of their own, and only there.
        if let admin = configuration.adminListen {
            services.append(
                Application(
                    responder: responder(.operations),
                    server: try serverBuilder(ConnectionLimiter(limit: 256), warmPath: nil),
                    configuration: .init(address: .hostname(admin.host, port: admin.port), serverName: nil),
                    onServerRunning: { channel in
                        let address = channel.localAddress.map { "\($0.ipAddress ?? admin.host):\($0.port ?? admin.port)" } ?? "\(admin)"
                        logger.notice("admin listening", metadata: ["address": "\(address)"])
                    },
                    logger: logger
                ))
        }
        if let proxy = configuration.proxy {
            services.append(
                try proxyListener(
                    proxy, configuration: configuration, responder: responder(.registry), authentication: authentication, logger: logger))
        }
        // First, so it stops last: the others write to the catalog until they end.
        if let shared = evictor.catalog as? PostgresCatalog { services.insert(SharedCatalogService(catalog: shared), at: 0) }
        let running: @Sendable (any Channel) async -> Void = { channel in
            let address = channel.localAddress.map { "\($0.ipAddress ?? listen.host):\($0.port ?? listen.port)" } ?? "\(listen)"
            logger.notice(
                "listening",
                metadata: [
                    "address": "\(address)",
                    "storage": "\(configuration.storagePath)",
                    "upstreams": "\(configuration.upstreams.map(\.name).joined(separator: ","))",
                    "default-upstream": "\(configuration.defaultUpstream)",
                    "offline": "\(configuration.offline)",
                    "tls": "\(configuration.tls != nil)",
                    "event-loops": "\(NIOSingletons.groupLoopCountSuggestion)",
                ]
            )
            SystemdNotifier.notify("READY=1")
            await onListening(address)
        }
        return Application(
            responder: mainResponder,
            server: server,
            configuration: .init(
                address: .hostname(listen.host, port: listen.port),
                serverName: nil,
                backlog: ConnectionLimits.listenBacklog,
                // Above this accept() pauses (clients wait in the kernel's backlog), so clients
                // never take the process to its descriptor limit.
                availableConnectionsDelegate: MaximumAvailableConnections(limits.acceptCeiling, logger: logger)
            ),
            services: services,
            onServerRunning: running,
            logger: logger
        )
    }

    /// `proxy:`: the listener for `HTTPS_PROXY` clients, answering with `responder` (the same
    /// mirror as the main listener) inside the connections it intercepts.
    static func proxyListener(
        _ proxy: Configuration.Proxy, configuration: Configuration, responder: RegistryResponder,
        authentication: ClientAuthentication?, logger: Logger
    ) throws -> some Service {
        let authority = try InterceptionAuthority(certificatePath: proxy.certificate, keyPath: proxy.key)
        if authority.permittedNames == nil {
            logger.warning(
                "proxy.ca has no name constraints: its key can sign for any site; `archway ca init` writes one that cannot",
                metadata: ["certificate": "\(proxy.certificate)"])
        }
        for host in configuration.upstreamHosts.sorted() where !authority.permits(host) {
            logger.warning("proxy.ca does not permit an upstream name: clients will refuse its certificate", metadata: ["host": "\(host)"])
        }
        let gate = ProxyGate(
            upstreams: configuration.upstreams.map { ProxyGate.Upstream(hosts: [$0.name] + $0.aliases, url: $0.url) },
            tunnels: proxy.tunnels)
        let ownPorts = Set([configuration.listen.port, proxy.listen.port] + (configuration.adminListen.map { [$0.port] } ?? []))
        var settings = ForwardProxyChannel.Settings(
            gate: gate, authority: authority, authentication: proxy.authenticate ? authentication : nil, ownPorts: ownPorts,
            limits: configuration.connectionLimits, connectTimeout: .nanoseconds(configuration.connectTimeout.totalNanoseconds))
        settings.warmPath = warmPathEnabled ? responder.warmPath(logger: logger) : nil
        let listen = proxy.listen
        return Application(
            responder: responder,
            server: .forwardProxy(settings: settings, limiter: ConnectionLimiter(limit: configuration.connectionLimits.maxConnections)),
            configuration: .init(
                address: .hostname(listen.host, port: listen.port), serverName: nil, backlog: ConnectionLimits.listenBacklog),
            onServerRunning: { channel in
                let address = channel.localAddress.map { "\($0.ipAddress ?? listen.host):\($0.port ?? listen.port)" } ?? "\(listen)"
                logger.notice(
                    "proxy listening",
                    metadata: ["address": "\(address)", "tunnels": "\(proxy.tunnels.map(\.description).joined(separator: ","))"])
            },
            logger: logger
        )
    }

    /// Whether warm manifests are answered on the event loop (`WarmManifestHandler`).
    /// `ARCHWAY_WARM_PATH=off` sends every request through the full path, for comparing the two
    /// (`make bench`) or ruling the warm path out when diagnosing.
    static var warmPathEnabled: Bool { ProcessInfo.processInfo.environment["ARCHWAY_WARM_PATH"] != "off" }

    /// The read path for a configuration: upstreams, routing, policies, the cache in
    /// `configuration.storagePath`. Shared by `serve`, `prefetch` and `policy preview`;
    /// `downloads` runs the store's downloads (the server's are a group a service owns, the
    /// command line's run detached).
    public static func makeRegistry(
        configuration: Configuration,
        transport: (any HTTPTransport)? = nil,
        router: UpstreamRouter? = nil,
        ownsStorage: Bool = true,
        downloads: DownloadRunner = .detached(),
        logger: Logger
    ) throws -> (registry: PullThroughRegistry, evictor: Evictor) {
        let layout = StorageLayout(root: URL(fileURLWithPath: configuration.storagePath))
        let local = try LocalBlobStore(layout: layout, ownsStorage: ownsStorage, downloads: downloads)
        let shared = configuration.catalogDatabase.map { PostgresCatalog(database: $0, logger: logger) }
        let catalog: any Catalog = try shared ?? SQLiteCatalog(path: layout.catalogPath.path)
        let store: any BlobStore
        let maximumSize: Int64?
        if let objectStorage = configuration.objectStorage {
            let transport =
                transport ?? CurlTransport(connectTimeout: configuration.connectTimeout, stallTimeout: configuration.stallTimeout)
            var fleet: TieredBlobStore.Fleet?
            if let replica = configuration.replica, let shared {
                fleet = TieredBlobStore.Fleet(
                    coordinator: PostgresFillCoordinator(catalog: shared, replica: replica.name, url: replica.advertiseURL),
                    peers: PeerFills(secret: Array(replica.secret.utf8), transport: transport), logger: logger)
            }
            // The bucket holds everything (its size the catalog's, evicted across the fleet);
            // this disk the hot part, kept to storage.max-size by the store itself.
            store = TieredBlobStore(
                local: local, bucket: try objectStorage.client(transport: transport), localLimit: configuration.storageMaxSize,
                redirects: objectStorage.redirect, fleet: fleet)
            maximumSize = objectStorage.maxSize
        } else {
            store = local
            maximumSize = configuration.storageMaxSize
        }
        let evictor = Evictor(store: store, catalog: catalog, maximumSize: maximumSize)
        let registry = PullThroughRegistry(
            router: try router ?? makeRouter(configuration: configuration, transport: transport, logger: logger),
            policies: try configuration.loadPolicies(),
            store: store,
            catalog: catalog,
            evictor: evictor,
            auditor: PlatformAuditor(catalog: catalog, logger: logger),
            tagTTL: configuration.tagTTL,
            offline: configuration.offline,
            mismatch: configuration.mismatch,
            binaryScan: configuration.binaries.verify ? ScanLimits(bytesPerLayer: configuration.binaries.maxLayerSize) : nil,
            logger: logger
        )
        return (registry, evictor)
    }

    /// Runs `body` while `catalog` works: a shared catalog's connections and listener run for
    /// as long (the command line has no services to run them).
    public static func withRunning<T>(_ catalog: any Catalog, _ body: () async throws -> T) async rethrows -> T {
        guard let shared = catalog as? PostgresCatalog else { return try await body() }
        let running = Task { await shared.run() }
        defer { running.cancel() }
        return try await body()
    }

    /// The configured upstreams, routed.
    public static func makeRouter(
        configuration: Configuration,
        transport: (any HTTPTransport)? = nil,
        logger: Logger
    ) throws -> UpstreamRouter {
        let transport = transport ?? CurlTransport(connectTimeout: configuration.connectTimeout, stallTimeout: configuration.stallTimeout)
        let entries = configuration.upstreams.map { upstream in
            UpstreamRouter.Entry(
                upstream: RegistryUpstream(
                    name: upstream.name,
                    baseURL: upstream.url,
                    credentials: upstream.username.map { Credentials(username: $0, password: upstream.password ?? "") },
                    tokenHosts: upstream.tokenHosts,
                    redirectHosts: upstream.redirectHosts,
                    transport: transport,
                    logger: logger
                ),
                aliases: upstream.aliases,
                allow: upstream.allow.compactMap { try? Glob($0) },
                isPrivate: upstream.isPrivate
            )
        }
        return try UpstreamRouter(entries, defaultUpstream: configuration.defaultUpstream)
    }
}

extension Configuration.ObjectStorage {
    /// The S3 client of the bucket.
    func client(transport: any HTTPTransport) throws -> S3Client {
        guard let location = S3Location(endpoint: endpoint, region: region, bucket: bucket, pathStyle: pathStyle) else {
            throw InvalidObjectStorage(endpoint: endpoint, bucket: bucket)
        }
        return S3Client(
            location: location, credentials: AWSCredentials(accessKeyID: accessKey, secretAccessKey: secretKey), transport: transport)
    }
}

/// A `storage.s3` built in code (not parsed, which checks it) that names no bucket.
struct InvalidObjectStorage: Error, CustomStringConvertible {
    let endpoint: String
    let bucket: String
    var description: String { "storage.s3: '\(endpoint)' and '\(bucket)' do not name a bucket" }
}

extension Configuration {
    /// Who may pull, when anyone is restricted: htpasswd users, or every client certificate.
    var clientAuthentication: ClientAuthentication? {
        guard authentication != nil || tls?.clientCA != nil else { return nil }
        return ClientAuthentication(
            users: authentication?.users ?? [:],
            required: authentication?.required ?? false,
            mutualTLS: tls?.clientCA != nil,
            admins: Set(authentication?.admins ?? [])
        )
    }
}
