import Cache
import CoreMetrics
import Foundation
import Logging
import OCI
import Policies
import RegistryClient

extension PullThroughRegistry {
    /// A manifest by tag or digest. A HEAD asks the same question: the answer's bytes are
    /// simply not sent.
    public func manifest(
        _ name: RepositoryName,
        _ reference: ManifestReference,
        namespace: String?,
        accepting: [String],
        client: Client = .unknown
    ) async throws -> ManifestAnswer {
        try await manifest(try resolve(name, namespace: namespace), reference, accepting: accepting, client: client)
    }

    /// A manifest of `route` by tag or digest.
    public func manifest(_ route: UpstreamRouter.Route, _ reference: ManifestReference, accepting: [String], client: Client = .unknown)
        async throws -> ManifestAnswer
    {
        // Only types Archway knows reach a cache key or the upstream.
        let accepting = MediaType.manifestAccept(accepting)
        var answer: ManifestAnswer
        var rule: String?
        switch reference {
        case .digest(let digest):
            answer = try await manifest(route, digest: digest, accepting: accepting)
        case .tag(let tag):
            if case .synthesize(let policy) = policies.decision(repository: route.key, tag: tag) {
                rule = policy.name
                answer = try await synthesized(
                    route, tag: tag, rule: policy, accepting: accepting, clientPlatform: auditor.platform(of: client)?.platform
                )
            } else {
                answer = try await manifest(route, tag: tag, accepting: accepting)
            }
        }
        metrics.count(answer.cache, manifest: true)
        if answer.cache != .miss { catalog.noteAccess(answer.manifest.digest, at: now()) }
        answer.warning = await audit(answer, route: route, reference: reference, client: client, rule: rule)
        return answer
    }

    func manifest(_ route: UpstreamRouter.Route, digest: Digest, accepting: [String]) async throws -> ManifestAnswer {
        var admission = try await admission(digest, under: route)
        if let stored = try await storedManifest(digest, mediaType: nil) {
            admission = try await confirmed(digest, admission, under: route, what: .manifest)
            await linkReferences(of: stored, under: route, source: admission.sources[0])
            // Registries answer a digest only in a media type the client accepts (distribution:
            // "OCI manifest found, but accept header does not support OCI manifests").
            guard Self.accepts(accepting, stored.mediaType) else {
                throw RegistryError(
                    .manifestUnknown,
                    "manifest \(digest) is a \(stored.mediaType), which the request's Accept does not include"
                )
            }
            return ManifestAnswer(manifest: stored, cache: .hit)
        }
        if offline { throw offlineMiss("manifest \(digest)") }
        var notFound: UpstreamError?
        for candidate in admission.sources {
            do {
                let manifest = try await candidate.upstream.manifest(candidate.repository, .digest(digest), accepting: accepting)
                try await save(manifest, route: candidate, tag: nil, servedUnder: route)
                return ManifestAnswer(manifest: manifest, cache: .miss)
            } catch let error as UpstreamError {
                guard case .status(404, _, _) = error else { throw wireError(error, route: candidate, what: .manifest) }
                notFound = error
            }
        }
        throw wireError(notFound ?? .status(404, errors: [], retryAfter: nil), route: route, what: .manifest)
    }

    func manifest(_ route: UpstreamRouter.Route, tag: Tag, accepting: [String]) async throws -> ManifestAnswer {
        let key = TagKey(upstream: route.upstream.name, repository: route.repository.value, tag: tag.value, accepting: accepting)
        if let record = try await catalog.tag(key),
            let cached = try await storedManifest(record.descriptor.digest, mediaType: record.descriptor.mediaType)
        {
            if offline || now().timeIntervalSince(record.validatedAt) < tagTTL.totalSeconds {
                return ManifestAnswer(manifest: cached, cache: .hit)
            }
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
            return ManifestAnswer(manifest: manifest, cache: .miss)
        } catch let error as UpstreamError {
            if error.isUnavailable, let fallback = try await cachedAnswer(for: key, accepting: accepting) {
                logger.warning("serving a stale tag", metadata: ["repository": "\(route.key)", "tag": "\(tag)", "error": "\(error)"])
                return ManifestAnswer(manifest: fallback, cache: .stale)
            }
            throw wireError(error, route: route, what: .manifest)
        }
    }

    /// A cached answer for the tag that another `Accept` set got, in a media type this one
    /// accepts: better than nothing when the upstream cannot be asked.
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
                try await catalog.markValidated(key, at: now())
                return ManifestAnswer(manifest: cached, cache: .hit)
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
            throw wireError(error, route: route, what: .manifest)
        }
    }

    /// The digests a manifest names.
    static func references(_ manifest: Manifest) -> [Digest] {
        switch try? manifest.decoded() {
        case .image(let image): [image.config.digest] + image.layers.map(\.digest)
        case .index(let index): index.manifests.map(\.digest)
        case nil: []
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
            try await catalog.recordManifest(
                manifest.descriptor, upstream: route.upstream.name, repository: route.repository.value, tag: tag, at: now()
            )
            // What it names (config, layers, children) can be fetched from the same place.
            await linkReferences(of: manifest, under: route, source: route)
            if let servedUnder, servedUnder.key != route.key { await linkReferences(of: manifest, under: servedUnder, source: route) }
            metrics.upstreamBytes.increment(by: Int64(manifest.bytes.count))
        } catch {
            // The answer is still right; only the cache missed it.
            logger.error("could not cache a manifest", metadata: ["digest": "\(manifest.digest)", "error": "\(error)"])
        }
    }
}
