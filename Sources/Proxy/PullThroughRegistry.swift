import Logging
import OCI
import RegistryClient

/// The read path of the mirror: answers the distribution API's read questions for a client,
/// routed to the right upstream.
///
/// Today it passes every question through; the cache (local first for digests, remote first for
/// tags, stale answers when the upstream fails) wraps the same calls.
/// Errors come out as ``RegistryError``s, ready for the wire.
public struct PullThroughRegistry: Sendable {
    public let router: UpstreamRouter
    let logger: Logger

    public init(router: UpstreamRouter, logger: Logger) {
        self.router = router
        self.logger = logger
    }

    public func manifest(_ name: RepositoryName, _ reference: ManifestReference, namespace: String?, accepting: [String])
        async throws -> Manifest
    {
        let route = try router.route(name, namespace: namespace)
        return try await upstreamCall(route, what: .manifest) {
            try await route.upstream.manifest(route.repository, reference, accepting: accepting)
        }
    }

    public func manifestDescriptor(_ name: RepositoryName, _ reference: ManifestReference, namespace: String?, accepting: [String])
        async throws -> Descriptor
    {
        let route = try router.route(name, namespace: namespace)
        return try await upstreamCall(route, what: .manifest) {
            try await route.upstream.manifestDescriptor(route.repository, reference, accepting: accepting)
        }
    }

    public func blob(_ name: RepositoryName, _ digest: Digest, namespace: String?, range: BlobRangeRequest?) async throws
        -> BlobResponse
    {
        let route = try router.route(name, namespace: namespace)
        return try await upstreamCall(route, what: .blob) {
            try await route.upstream.blob(route.repository, digest, range: range)
        }
    }

    public func tags(_ name: RepositoryName, namespace: String?, count: Int?, last: String?) async throws -> TagPage {
        let route = try router.route(name, namespace: namespace)
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
    private func upstreamCall<Result>(_ route: UpstreamRouter.Route, what: UpstreamError.Subject, _ call: () async throws -> Result)
        async throws -> Result
    {
        do {
            return try await call()
        } catch let error as UpstreamError {
            let wire = error.registryError(for: what, upstream: route.upstream.name)
            if wire.code == .unavailable {
                logger.warning("upstream failed", metadata: ["repository": "\(route.key)", "error": "\(error)"])
            }
            throw wire
        }
    }
}
