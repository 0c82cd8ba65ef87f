import Cache
import CoreMetrics
import Foundation
import Logging
import OCI
import Policies
import RegistryClient

/// Manifests and tags, shaped like distribution's proxy: digests from the cache first, tags from
/// the upstream first (trusted for `tagTTL`, then revalidated with a HEAD), the cached answer
/// when the upstream fails, and everything fetched saved on the way through.
struct ManifestService: Sendable {
    let store: any BlobStore
    let catalog: any Catalog
    let access: ContentAccess
    let metrics: CacheMetrics
    let tagTTL: Duration
    let offline: Bool
    let now: @Sendable () -> Date
    let logger: Logger
    /// Manifests served recently, already verified: a warm manifest costs no file read and no
    /// hashing. Content never changes under a digest, so there is nothing to invalidate.
    let recentManifests = RecentlyUsed<Digest, Manifest>(budget: 32 << 20) { $0.bytes.count + 256 }
    /// Whole tag lists upstreams answered (sorted), kept briefly: a client paging through a
    /// long list, or repeating the question, does not make Archway ask and sort again.
    let tagLists = RecentlyUsed<RepositoryKey, CachedTagList>(budget: 1_000_000) { $0.tags.count + 1 }
    static let tagListLifetime: TimeInterval = 30

    func manifest(_ route: UpstreamRouter.Route, digest: Digest, accepting: [String]) async throws -> ManifestAnswer {
        var admission = try await access.admission(digest, under: route)
        if let stored = try await storedManifest(digest, mediaType: nil) {
            admission = try await access.confirmed(digest, admission, under: route, what: .manifest)
            await access.linkReferences(of: stored, under: route, source: admission.sources[0])
            // Registries answer a digest only in a media type the client accepts (distribution:
            // "OCI manifest found, but accept header does not support OCI manifests").
            guard Self.accepts(accepting, stored.mediaType) else {
                throw RegistryError(
                    .manifestUnknown,
                    "manifest \(digest) is a \(stored.mediaType), which the request's Accept does not include"
                )
            }
            return ManifestAnswer(manifest: stored, cache: .hit, freshUntil: .distantFuture)
        }
        if offline { throw offlineMiss("manifest \(digest)") }
        var notFound: UpstreamError?
        for candidate in admission.sources {
            do {
                let manifest = try await candidate.upstream.manifest(candidate.repository, .digest(digest), accepting: accepting)
                try await save(manifest, route: candidate, tag: nil, servedUnder: route)
                return ManifestAnswer(manifest: manifest, cache: .miss, freshUntil: .distantFuture)
            } catch let error as UpstreamError {
                guard case .status(404, _, _) = error else { throw error.registryError(for: .manifest, route: candidate, logger: logger) }
                notFound = error
            }
        }
        throw (notFound ?? .status(404, errors: [], retryAfter: nil)).registryError(for: .manifest, route: route, logger: logger)
    }

    func manifest(_ route: UpstreamRouter.Route, tag: Tag, accepting: [String]) async throws -> ManifestAnswer {
        let key = TagKey(upstream: route.upstream.name, repository: route.repository.value, tag: tag.value, accepting: accepting)
        if let record = try await catalog.tag(key),
            let cached = try await storedManifest(record.descriptor.digest, mediaType: record.descriptor.mediaType)
        {
            let freshUntil = offline ? Date.distantFuture : fresh(since: record.validatedAt)
            if now() < freshUntil { return ManifestAnswer(manifest: cached, cache: .hit, freshUntil: freshUntil) }
            return try await revalidate(route, tag: tag, key: key, cached: cached, accepting: accepting)
        }
        if offline {
            guard let fallback = try await cachedAnswer(for: key, accepting: accepting) else {
                throw offlineMiss("tag \(route.key):\(tag)")
            }
            return ManifestAnswer(manifest: fallback, cache: .hit)
        }
        do {
            let manifest = try await route.upstream.manifest(route.repository, .tag(tag), accepting: accepting)
            try await save(manifest, route: route, tag: key)
            return ManifestAnswer(manifest: manifest, cache: .miss, freshUntil: fresh(since: now()))
        } catch let error as UpstreamError {
            if error.isUnavailable, let fallback = try await cachedAnswer(for: key, accepting: accepting) {
                logger.warning("serving a stale tag", metadata: ["repository": "\(route.key)", "tag": "\(tag)", "error": "\(error)"])
                return ManifestAnswer(manifest: fallback, cache: .stale)
            }
            throw error.registryError(for: .manifest, route: route, logger: logger)
        }
    }

    /// A cached answer for the tag that another `Accept` set got, in a media type this one
    /// accepts: better than nothing when the upstream cannot be asked.
    /// Until when a tag validated at `validated` is answered without asking the upstream.
    private func fresh(since validated: Date) -> Date {
        validated.addingTimeInterval(tagTTL.totalSeconds)
    }

    private func cachedAnswer(for key: TagKey, accepting: [String]) async throws -> Manifest? {
        for record in try await catalog.tagAnswers(upstream: key.upstream, repository: key.repository, tag: key.tag)
        where Self.accepts(accepting, record.descriptor.mediaType) {
            if let manifest = try await storedManifest(record.descriptor.digest, mediaType: record.descriptor.mediaType) {
                return manifest
            }
        }
        return nil
    }

    /// A cached tag past its TTL: one HEAD says whether it still names the same digest. Only a
    /// changed tag is fetched again; an unavailable upstream leaves the cached answer, stale.
    private func revalidate(_ route: UpstreamRouter.Route, tag: Tag, key: TagKey, cached: Manifest, accepting: [String]) async throws
        -> ManifestAnswer
    {
        do {
            let current = try await route.upstream.manifestDescriptor(route.repository, .tag(tag), accepting: accepting)
            if current.digest == cached.digest {
                let validated = now()
                try await catalog.markValidated(key, at: validated)
                return ManifestAnswer(manifest: cached, cache: .hit, freshUntil: fresh(since: validated))
            }
            var manifest = try await storedManifest(current.digest, mediaType: current.mediaType)
            if manifest == nil {
                manifest = try await route.upstream.manifest(route.repository, .digest(current.digest), accepting: accepting)
            }
            guard let manifest else { throw UpstreamError.invalidResponse("tag \(tag) moved to \(current.digest), which cannot be read") }
            try await save(manifest, route: route, tag: key)
            logger.info(
                "tag moved",
                metadata: ["repository": "\(route.key)", "tag": "\(tag)", "from": "\(cached.digest)", "to": "\(manifest.digest)"]
            )
            return ManifestAnswer(manifest: manifest, cache: .miss)
        } catch let error as UpstreamError where error.isUnavailable {
            logger.warning("serving a stale tag", metadata: ["repository": "\(route.key)", "tag": "\(tag)", "error": "\(error)"])
            return ManifestAnswer(manifest: cached, cache: .stale)
        } catch let error as UpstreamError {
            if case .status(404, _, _) = error { try await catalog.removeTag(key) }
            throw error.registryError(for: .manifest, route: route, logger: logger)
        }
    }

    /// Whether an `Accept` list admits a media type; no `Accept` at all admits anything.
    static func accepts(_ accepting: [String], _ mediaType: MediaType) -> Bool {
        if accepting.isEmpty { return true }
        return MediaType.parseAccept(accepting).contains { type in
            type == mediaType || type.rawValue == "*/*" || type.rawValue == "application/*"
        }
    }

    /// A manifest from the store, with its media type from the catalog (or its own JSON).
    func storedManifest(_ digest: Digest, mediaType: MediaType?) async throws -> Manifest? {
        let mediaType = mediaType?.rawValue.isEmpty == true ? nil : mediaType
        if let recent = recentManifests.value(for: digest), mediaType == nil || recent.mediaType == mediaType {
            return recent
        }
        guard let bytes = try? await store.data(digest, limit: Manifest.maximumSize) else { return nil }
        var resolved = mediaType
        if resolved == nil { resolved = try await catalog.content(digest)?.mediaType }
        let manifest = try? Manifest(bytes: bytes, mediaType: resolved, expected: digest)
        if let manifest { recentManifests.set(manifest, for: digest) }
        return manifest
    }

    /// Stores a manifest fetched from `route` before its digest is ever returned, so a later GET
    /// by digest (even with the upstream gone) finds it. What it names is linked to `route`, and
    /// to `servedUnder` (the name the client asked for) when that is another name.
    func save(_ manifest: Manifest, route: UpstreamRouter.Route, tag: TagKey?, servedUnder: UpstreamRouter.Route? = nil) async throws {
        do {
            try await store.store(manifest.bytes, as: manifest.digest)
            try await catalog.recordManifest(manifest.descriptor, from: route.key, tag: tag, at: now())
            // What it names (config, layers, children) can be fetched from the same place.
            await access.linkReferences(of: manifest, under: route, source: route)
            if let servedUnder, servedUnder.key != route.key {
                await access.linkReferences(of: manifest, under: servedUnder, source: route)
            }
            metrics.upstreamBytes.increment(by: Int64(manifest.bytes.count))
        } catch {
            // The answer is still right; only the cache missed it.
            logger.error("could not cache a manifest", metadata: ["digest": "\(manifest.digest)", "error": "\(error)"])
        }
    }

    // MARK: - Tags

    /// A page of the upstream's tags of `route`, which the client asked for as `name`.
    func tags(_ route: UpstreamRouter.Route, name: RepositoryName, count: Int?, last: String?) async throws -> TagList {
        if let cached = tagLists.value(for: route.key), now().timeIntervalSince(cached.at) < Self.tagListLifetime {
            return cached.page(name: name, count: count, last: last)
        }
        // Ask for the page the client asked for.
        let page: TagPage
        do {
            page = try await route.upstream.tags(route.repository, count: count, last: last)
        } catch let error as UpstreamError {
            throw error.registryError(for: .repository, route: route, logger: logger)
        }
        // A whole list (the client asked for everything, or the upstream ignored `n`) is kept,
        // and every page is cut from it.
        if !page.hasMore, last == nil, count == nil || page.tags.count > count! {
            let whole = CachedTagList(tags: Set(page.tags).sorted(), at: now())
            tagLists.set(whole, for: route.key)
            return whole.page(name: name, count: count, last: last)
        }
        return TagList.page(of: Set(page.tags), name: name, count: count, last: last, hasMore: page.hasMore)
    }

    /// Every tag the upstream has for `route`; none when it does not know the repository.
    func allTags(_ route: UpstreamRouter.Route) async throws -> Set<String> {
        do {
            return Set(try await route.upstream.tags(route.repository, count: nil, last: nil).tags)
        } catch let error as UpstreamError {
            guard case .status(404, _, _) = error else { throw error.registryError(for: .repository, route: route, logger: logger) }
            return []
        }
    }
}

extension TagList {
    /// The page after `last`, at most `count` long, of `tags` sorted lexically. Not every upstream
    /// paginates (distribution 2.8 ignores n and last): applied here too, so clients always get
    /// the spec's pagination.
    static func page(of tags: Set<String>, name: RepositoryName, count: Int?, last: String?, hasMore: Bool) -> TagList {
        var page = tags.sorted()
        var hasMore = hasMore
        if let last { page = page.filter { $0 > last } }
        if let count, page.count > count {
            page = Array(page.prefix(count))
            hasMore = true
        }
        return TagList(name: name.value, tags: page, hasMore: hasMore)
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
