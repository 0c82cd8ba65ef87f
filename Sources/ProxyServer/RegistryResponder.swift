import Hummingbird
import Logging
import NIOCore
import OCI
import Proxy

/// The HTTP surface of the mirror: works out once what a request asks for (the endpoint, and
/// the repository route it names), then runs it through the middleware to its controller:
///
///     access log → metrics → errors → read-only → authentication → RegistryController
///                                                                 → AdminController
public struct RegistryResponder: HTTPResponder {
    public typealias Context = ArchwayRequestContext

    let registry: PullThroughRegistry
    let accessLog = AccessLogMiddleware()
    let metrics = RequestMetricsMiddleware(metrics: RequestMetrics())
    let errors = ErrorMiddleware()
    /// Who may pull; nil: everyone.
    let authentication: AuthenticationMiddleware?
    let registryController: RegistryController
    let adminController: AdminController
    /// What this listener serves: everything, or (with `admin-listen`) the registry on one
    /// listener and the operator's endpoints on the other.
    let surface: Surface

    public enum Surface: Sendable {
        case everything
        /// The registry API; the operator's endpoints are not found (probes excepted).
        case registry
        /// The operator's endpoints alone.
        case operations
    }

    public init(
        registry: PullThroughRegistry,
        warnMismatches: Bool = true,
        advisor: MismatchAdvisor? = nil,
        metricsText: (@Sendable () async -> String)? = nil,
        authentication: ClientAuthentication? = nil,
        streamingBudget: StreamingBudget? = nil,
        writeTimeout: TimeAmount = .seconds(60),
        peerSecret: [UInt8]? = nil,
        surface: Surface = .everything
    ) {
        self.registry = registry
        self.surface = surface
        self.authentication = authentication.map(AuthenticationMiddleware.init(authentication:))
        self.registryController = RegistryController(
            registry: registry, warnMismatches: warnMismatches, streamingBudget: streamingBudget, writeTimeout: writeTimeout,
            peerSecret: peerSecret)
        self.adminController = AdminController(registry: registry, advisor: advisor, metricsText: metricsText)
    }

    /// The warm path for this surface's listeners (``WarmManifestHandler``), logging to `logger`.
    public func warmPath(logger: Logger) -> WarmManifestPath {
        WarmManifestPath(
            registry: registry, authentication: authentication?.authentication, metrics: metrics.metrics, logger: logger,
            servesRegistry: surface != .operations)
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        var context = context
        context.endpoint = Result { () throws(RegistryError) in try RegistryRoute(path: request.uri.path) }
        if case .success(let endpoint) = context.endpoint, !serves(endpoint) { context.endpoint = .success(.notFound) }
        var namespace = request.uri.queryParameters["ns"].map(String.init)
        // Through the proxy listener the connection, not the request, names the upstream.
        if let session = InterceptedSession.current {
            namespace = session.upstream
            // The proxy head's own reading of `host:port` (nil for a `Host` it would refuse).
            if session.absoluteForm,
                request.head.authority.flatMap({ try? ProxyRequestHead.authority($0, defaultPort: 80).host }) != session.host
            {
                context.endpoint = .failure(
                    RegistryError(.denied, "this connection was opened for \(session.host); open another for another host"))
            }
        }
        if let name = (try? context.endpoint.get())?.repositoryName {
            context.repository = Result { () throws(RegistryError) in try registry.resolve(name, namespace: namespace) }
        }
        return try await accessLog.handle(request, context: context) { request, context in
            try await metrics.handle(request, context: context) { request, context in
                try await errors.handle(request, context: context) { request, context in
                    try await dispatch(request, context: context)
                }
            }
        }
    }

    /// Whether this listener answers `endpoint` (others are not found here).
    private func serves(_ endpoint: RegistryRoute) -> Bool {
        switch surface {
        case .everything: true
        case .registry: !endpoint.isOperational || endpoint.isProbe
        case .operations: endpoint.isOperational
        }
    }

    private func dispatch(_ request: Request, context: Context) async throws -> Response {
        switch request.method {
        case .get, .head: break
        default: throw RegistryError(.unsupported, "this registry is a read-only mirror: \(request.method) is not supported")
        }
        let endpoint = try context.endpoint.get()
        // Replicas prove themselves with the fleet's secret, not with a client's credentials.
        if case .peerFill(let digest) = endpoint { return try await registryController.peerFill(request, digest: digest, context: context) }
        guard let authentication else { return try await controller(request, endpoint: endpoint, context: context) }
        return try await authentication.handle(request, context: context) { request, context in
            try await controller(request, endpoint: endpoint, context: context)
        }
    }

    private func controller(_ request: Request, endpoint: RegistryRoute, context: Context) async throws -> Response {
        if endpoint.isOperational { return try await adminController.respond(to: request, endpoint: endpoint) }
        return try await registryController.respond(to: request, endpoint: endpoint, context: context)
    }
}
