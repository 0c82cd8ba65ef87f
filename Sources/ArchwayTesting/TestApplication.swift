import ArchwayApp
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Proxy
import RegistryClient

/// Runs `test` against Archway as `archway serve` starts it (``ArchwayServer/makeApplication``:
/// the same services, connection guards, sendfile channel and middleware), listening on a
/// loopback port, in front of in-memory upstreams, with a cache in a temporary folder. The first
/// upstream is the default one; `configure` changes the rest of the configuration.
public func withArchway<Result: Sendable>(
    upstreams: [UpstreamRouter.Entry],
    offline: Bool = false,
    configure: (inout Configuration) -> Void = { _ in },
    _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Result
) async throws -> Result {
    var logger = Logger(label: "archway-test")
    logger.logLevel = .critical
    let storage = try makeTemporaryDirectory(prefix: "archway-cache")
    defer { try? FileManager.default.removeItem(at: storage) }
    var configuration = Configuration(
        listen: .init(host: "127.0.0.1", port: 0),
        storagePath: storage.path,
        upstreams: upstreams.map { Configuration.Upstream(name: $0.upstream.name, url: "http://in-memory.invalid") },
        defaultUpstream: upstreams[0].upstream.name,
        offline: offline
    )
    configure(&configuration)
    let application = try ArchwayServer.makeApplication(
        configuration: configuration,
        router: try UpstreamRouter(upstreams, defaultUpstream: upstreams[0].upstream.name),
        logger: logger
    )
    return try await application.test(.live, test)
}
