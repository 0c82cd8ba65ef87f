import Cache
import Foundation
import Logging
import OCI
import RegistryClient

/// The read path of the mirror, shaped like distribution's proxy stores: digests from the cache
/// first, tags from the upstream first (trusted for `tagTTL`, then revalidated with a HEAD),
/// the cached answer when the upstream fails, and everything fetched saved on the way through.
///
/// Errors come out as ``RegistryError``s (or ``RangeNotSatisfiable``), ready for the wire.
public struct PullThroughRegistry: Sendable {
    public let router: UpstreamRouter
    let store: BlobStore
    let catalog: Catalog
    let evictor: Evictor
    let tagTTL: Duration
    let offline: Bool
    let now: @Sendable () -> Date
    let logger: Logger
    let metrics = CacheMetrics()

    public init(
        router: UpstreamRouter,
        store: BlobStore,
        catalog: Catalog,
        maximumSize: Int64? = nil,
        tagTTL: Duration = .seconds(300),
        offline: Bool = false,
        now: @escaping @Sendable () -> Date = Date.init,
        logger: Logger
    ) {
        self.router = router
        self.store = store
        self.catalog = catalog
        self.evictor = Evictor(store: store, catalog: catalog, maximumSize: maximumSize)
        self.tagTTL = tagTTL
        self.offline = offline
        self.now = now
        self.logger = logger
    }

    // MARK: - Tags

    public func tags(_ name: RepositoryName, namespace: String?, count: Int?, last: String?) async throws -> TagPage {
        let route = try router.route(name, namespace: namespace)
        if offline { throw RegistryError(.unavailable, "offline: tag lists are not cached") }
        let upstreamPage = try await upstreamCall(route, what: .repository) {
            try await route.upstream.tags(route.repository, count: count, last: last)
        }
        // Not every upstream paginates (distribution 2.8 ignores n and last): apply them here too,
        // on the lexically sorted list, so clients always get the spec's pagination.
        var tags = upstreamPage.tags.sorted()
        if let last { tags = tags.filter { $0 > last } }
        var hasMore = upstreamPage.hasMore
        if let count, tags.count > count {
            tags = Array(tags.prefix(count))
            hasMore = true
        }
        return TagPage(name: name.value, tags: tags, hasMore: hasMore)
    }

    /// Runs an upstream call, turning its failure into the error the client should see.
    func upstreamCall<Result>(_ route: UpstreamRouter.Route, what: UpstreamError.Subject, _ call: () async throws -> Result)
        async throws -> Result
    {
        do {
            return try await call()
        } catch let error as UpstreamError {
            throw wireError(error, route: route, what: what)
        }
    }

    func wireError(_ error: UpstreamError, route: UpstreamRouter.Route, what: UpstreamError.Subject) -> RegistryError {
        let wire = error.registryError(for: what, upstream: route.upstream.name)
        if wire.code == .unavailable {
            logger.warning("upstream failed", metadata: ["repository": "\(route.key)", "error": "\(error)"])
        }
        return wire
    }

    func offlineMiss(_ what: String) -> RegistryError {
        RegistryError(.unavailable, "offline: \(what) is not in the cache and the upstream is not contacted")
    }
}
