import Cache
import Foundation
import Logging
import OCI
import RegistryClient

extension ManifestService {
    /// The referrers of `subject` in `route` (signatures, SBOMs, attestations): the upstream's
    /// referrers API when it has one, else its referrers tag schema (`sha256-<hex>`, an index
    /// clients push to registries without the API), else none. A list with referrers is kept
    /// like a tag: trusted for `tagTTL`, served stale when the upstream fails, and from the cache
    /// alone offline; an empty one is not kept.
    func referrers(_ route: UpstreamRouter.Route, subject: Digest) async throws -> (index: ImageIndex, cache: CacheStatus) {
        // Not a tag any manifest can have (`/` and `:` are outside the grammar): no collision.
        let key = TagKey(
            upstream: route.upstream.name, repository: route.repository.value, tag: "referrers/\(subject)",
            accepting: [MediaType.ociIndex.rawValue])
        var cached: ImageIndex?
        if let record = try await catalog.tag(key), let manifest = try await storedManifest(record.descriptor.digest, mediaType: .ociIndex),
            case .index(let index) = try? manifest.decoded()
        {
            cached = index
            if offline || now().timeIntervalSince(record.validatedAt) < tagTTL.totalSeconds { return (index, .hit) }
        }
        if offline { throw offlineMiss("referrers of \(route.key)@\(subject)") }
        do {
            var found = try await route.upstream.referrers(route.repository, subject)
            if found == nil { found = try await tagSchemaReferrers(route, subject: subject) }
            let manifests = found?.manifests ?? []
            let list = ImageIndex(mediaType: .ociIndex, manifests: manifests)
            // Only a list with referrers is kept: a client asking about made-up digests must not
            // grow the catalog by a row each (it costs them upstream requests, as a 404 tag does).
            if !manifests.isEmpty {
                try await save(Manifest(bytes: list.canonicalJSON(), mediaType: .ociIndex), route: route, tag: key)
            }
            return (list, .miss)
        } catch let error as UpstreamError {
            if error.isUnavailable, let cached {
                logger.warning(
                    "serving stale referrers", metadata: ["repository": "\(route.key)", "subject": "\(subject)", "error": "\(error)"])
                return (cached, .stale)
            }
            throw error.registryError(for: .manifest, route: route, logger: logger)
        }
    }

    /// The index the referrers tag schema names (`<algorithm>-<hex>`); empty when there is none.
    private func tagSchemaReferrers(_ route: UpstreamRouter.Route, subject: Digest) async throws -> ImageIndex {
        let tag = try Tag("\(subject.algorithm)-\(subject.encoded)")
        do {
            let manifest = try await route.upstream.manifest(route.repository, .tag(tag), accepting: [MediaType.ociIndex.rawValue])
            guard case .index(let index) = try? manifest.decoded() else { return ImageIndex(manifests: []) }
            return index
        } catch let error as UpstreamError {
            guard case .status(404, _, _) = error else { throw error }
            return ImageIndex(manifests: [])
        }
    }
}
