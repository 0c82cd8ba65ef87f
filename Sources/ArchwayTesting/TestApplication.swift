import Hummingbird
import HummingbirdTesting
import Logging
import Proxy
import ProxyServer
import RegistryClient

/// Runs `test` against Archway's HTTP surface in front of in-memory upstreams, without a socket.
/// The first upstream is the default one.
public func withArchway<Result: Sendable>(
    upstreams: [UpstreamRouter.Entry],
    _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Result
) async throws -> Result {
    var logger = Logger(label: "archway-test")
    logger.logLevel = .warning
    let router = try UpstreamRouter(upstreams, defaultUpstream: upstreams[0].upstream.name)
    let application = Application(
        responder: RegistryResponder(registry: PullThroughRegistry(router: router, logger: logger)),
        logger: logger
    )
    return try await application.test(.router, test)
}
