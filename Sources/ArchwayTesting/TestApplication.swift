import Cache
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Proxy
import ProxyServer
import RegistryClient

/// Runs `test` against Archway's HTTP surface in front of in-memory upstreams, without a socket,
/// with a cache in a temporary folder. The first upstream is the default one.
public func withArchway<Result: Sendable>(
    upstreams: [UpstreamRouter.Entry],
    offline: Bool = false,
    _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Result
) async throws -> Result {
    var logger = Logger(label: "archway-test")
    logger.logLevel = .critical
    let storage = try makeTemporaryDirectory(prefix: "archway-cache")
    defer { try? FileManager.default.removeItem(at: storage) }
    let registry = PullThroughRegistry(
        router: try UpstreamRouter(upstreams, defaultUpstream: upstreams[0].upstream.name),
        store: try BlobStore(layout: StorageLayout(root: storage)),
        catalog: try Catalog.inMemory(),
        offline: offline,
        logger: logger
    )
    let application = Application(responder: RegistryResponder(registry: registry), logger: logger)
    return try await application.test(.router, test)
}
