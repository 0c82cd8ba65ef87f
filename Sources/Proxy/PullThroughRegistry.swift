import Cache
import Foundation
import Logging
import OCI
import Policies
import RegistryClient

/// The read path of the mirror, shaped like distribution's proxy stores: digests from the cache
/// first, tags from the upstream first (trusted for `tagTTL`, then revalidated with a HEAD),
/// the cached answer when the upstream fails, and everything fetched saved on the way through.
///
/// Errors come out as ``RegistryError``s (or ``RangeNotSatisfiable``), ready for the wire.
public struct PullThroughRegistry: Sendable {
    public let router: UpstreamRouter
    let store: any BlobStore
    let catalog: any Catalog
    let evictor: Evictor
    let tagTTL: Duration
    let offline: Bool
    let now: @Sendable () -> Date
    let logger: Logger
    let metrics = CacheMetrics()
    /// Manifests served recently, already verified: a warm manifest costs no file read and no
    /// hashing. Content never changes under a digest, so there is nothing to invalidate.
    let recentManifests = RecentlyUsed<Digest, Manifest>(budget: 32 << 20) { $0.bytes.count + 256 }
    let recentDecodedManifests = RecentlyUsed<Digest, DecodedManifest>(budget: 4096)
    /// Digests known to be servable under a name, and the sources known to have them: a warm
    /// pull checks its access without a catalog read.
    let confirmedSources = RecentlyUsed<NamedDigest, [Origin]>(budget: 100_000)
    /// Manifests whose content is already linked to the name they were served under.
    let linkedManifests = RecentlyUsed<NamedDigest, Bool>(budget: 20_000)
    /// Whole tag lists upstreams answered (sorted), kept briefly: a client paging through a
    /// long list, or repeating the question, does not make Archway ask and sort again.
    let tagLists = RecentlyUsed<String, CachedTagList>(budget: 1_000_000) { $0.tags.count + 1 }
    static let tagListLifetime: TimeInterval = 30
    /// The policies in force (reloaded on SIGHUP).
    public let policyStore: PolicyStore
    public var policies: PolicySet { policyStore.current }
    public let auditor: PlatformAuditor

    public init(
        router: UpstreamRouter,
        policies: PolicySet = .empty,
        store: any BlobStore,
        catalog: any Catalog,
        evictor: Evictor? = nil,
        tagTTL: Duration = .seconds(300),
        offline: Bool = false,
        now: @escaping @Sendable () -> Date = Date.init,
        logger: Logger
    ) {
        self.router = router
        self.policyStore = PolicyStore(policies)
        self.store = store
        self.catalog = catalog
        // One evictor for the store: the composition root shares it with the periodic pass.
        self.evictor = evictor ?? Evictor(store: store, catalog: catalog, maximumSize: nil)
        self.tagTTL = tagTTL
        self.offline = offline
        self.now = now
        self.logger = logger
        self.auditor = PlatformAuditor(catalog: catalog, logger: logger, now: now)
    }

    // MARK: - Tags

    /// Where a name a client asked for goes: resolved once per request, then passed to the
    /// entry points below. Throws for an unknown `ns` and for a name the allow list refuses.
    public func resolve(_ name: RepositoryName, namespace: String?) throws(RegistryError) -> UpstreamRouter.Route {
        try router.route(name, namespace: namespace)
    }

    public func tags(_ name: RepositoryName, namespace: String?, count: Int?, last: String?) async throws -> TagList {
        try await tags(try resolve(name, namespace: namespace), name: name, count: count, last: last)
    }

    /// A page of the tags of `route`, which the client asked for as `name`.
    public func tags(_ route: UpstreamRouter.Route, name: RepositoryName, count: Int?, last: String?) async throws -> TagList {
        if offline { throw RegistryError(.unavailable, "offline: tag lists are not cached") }
        let rules = policies.rules(for: route.key)
        var tags: Set<String>
        var hasMore = false
        if rules.isEmpty {
            if let cached = tagLists.value(for: route.key), now().timeIntervalSince(cached.at) < Self.tagListLifetime {
                return cached.page(name: name, count: count, last: last)
            }
            // Ask for the page the client asked for.
            let page = try await upstreamCall(route, what: .repository) {
                try await route.upstream.tags(route.repository, count: count, last: last)
            }
            // A whole list (the client asked for everything, or the upstream ignored `n`) is
            // kept, and every page is cut from it.
            if !page.hasMore, last == nil, count == nil || page.tags.count > count! {
                let whole = CachedTagList(tags: Set(page.tags).sorted(), at: now())
                tagLists.set(whole, for: route.key)
                return whole.page(name: name, count: count, last: last)
            }
            tags = Set(page.tags)
            hasMore = page.hasMore
        } else {
            // The repository may exist only through its rules: its own tags, when it has any,
            // plus every tag the rules can synthesize.
            do {
                tags = Set(try await route.upstream.tags(route.repository, count: nil, last: nil).tags)
            } catch let error as UpstreamError {
                guard case .status(404, _, _) = error else { throw wireError(error, route: route, what: .repository) }
                tags = []
            }
            tags.formUnion(try await synthesizableTags(route, rules: rules))
        }
        // Not every upstream paginates (distribution 2.8 ignores n and last): apply them here too,
        // on the lexically sorted list, so clients always get the spec's pagination.
        var page = tags.sorted()
        if let last { page = page.filter { $0 > last } }
        if let count, page.count > count {
            page = Array(page.prefix(count))
            hasMore = true
        }
        return TagList(name: name.value, tags: page, hasMore: hasMore)
    }

    /// The tags rules can answer: for a member `{repository}:arm64-{tag}`, every `arm64-X` tag of
    /// the member's repository gives `X`, when the rule's tag globs admit it.
    func synthesizableTags(_ route: UpstreamRouter.Route, rules: [PolicyRule]) async throws -> Set<String> {
        let marker = "0archway0tag0"
        var result: Set<String> = []
        for rule in rules {
            for member in rule.members {
                guard let expanded = member.expand(repository: route.key, tag: try Tag(marker)),
                    case .tag(let pattern) = expanded.reference, pattern.value.contains(marker),
                    !expanded.repository.value.contains(marker),
                    let source = router.route(upstream: expanded.registry, repository: expanded.repository),
                    let markerRange = pattern.value.range(of: marker)
                else { continue }
                let prefix = pattern.value[..<markerRange.lowerBound]
                let suffix = pattern.value[markerRange.upperBound...]
                guard let memberTags = try? await source.upstream.tags(source.repository, count: nil, last: nil).tags else { continue }
                for memberTag in memberTags where memberTag.hasPrefix(prefix) && memberTag.hasSuffix(suffix) {
                    let candidate = String(memberTag.dropFirst(prefix.count).dropLast(suffix.count))
                    guard let tag = try? Tag(candidate), rule.applies(to: route.key, tag: tag) else { continue }
                    result.insert(candidate)
                }
            }
        }
        return result
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

/// A repository's whole tag list as an upstream answered it, sorted, and when.
struct CachedTagList: Sendable {
    let tags: [String]
    let at: Date

    /// The page after `last`, at most `count` long, found by binary search.
    func page(name: RepositoryName, count: Int?, last: String?) -> TagList {
        var start = 0
        if let last {
            var high = tags.count
            while start < high {
                let middle = (start + high) / 2
                if tags[middle] <= last { start = middle + 1 } else { high = middle }
            }
        }
        let end = count.map { min(tags.count, start + $0) } ?? tags.count
        return TagList(name: name.value, tags: Array(tags[start..<end]), hasMore: end < tags.count)
    }
}
