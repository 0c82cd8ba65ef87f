import Cache
import Foundation
import NIOCore
import NIOFoundationCompat
import OCI
import RegistryClient

/// What an image is, read through the cache: a manifest's decoded form (remembered by digest:
/// containerd asks for the same index on every pull) and an image's platform from its config.
struct ImageInspector: Sendable {
    let blobs: BlobService
    let recentDecodedManifests = RecentlyUsed<Digest, DecodedManifest>(budget: 4096)
    /// Images' platforms by config digest, as read from their configs.
    let recentPlatforms = RecentlyUsed<Digest, Platform>(budget: 16384)

    /// A manifest's decoded form; nil when it does not decode.
    func decoded(_ manifest: Manifest) -> DecodedManifest? {
        if let decoded = recentDecodedManifests.value(for: manifest.digest) { return decoded }
        guard let decoded = try? manifest.decoded() else { return nil }
        recentDecodedManifests.set(decoded, for: manifest.digest)
        return decoded
    }

    /// An image's platform from its config blob, read through the cache (the client fetches it
    /// next anyway). Throws what fetching or decoding the config throws.
    func platform(of image: ImageManifest, route: UpstreamRouter.Route) async throws -> Platform {
        if let known = recentPlatforms.value(for: image.config.digest) { return known }
        let answer = try await blobs.blob(route, image.config.digest, rangeHeader: nil)
        let bytes = try await answer.stream(chunkSize: BlobAnswer.chunkSize).collect(upTo: 1 << 20)
        let platform = try ImageConfig.decode(Data(buffer: bytes)).platform.normalized()
        recentPlatforms.set(platform, for: image.config.digest)
        return platform
    }
}

extension PlatformAuditor {
    /// The platforms an index offers images for (attestations and unknown platforms left out).
    static func listedPlatforms(of index: ImageIndex) -> [Platform] {
        index.manifests.filter { !$0.isAttestation }.compactMap(\.platform).filter { !$0.isUnknown }
    }

    /// Looks at a manifest answer with the client's eyes: learns its platform from the child it
    /// fetches, and records the pulls that would give it an image of another platform. Returns
    /// what it found when there is a mismatch.
    func audit(
        _ answer: ManifestAnswer, route: UpstreamRouter.Route, reference: ManifestReference, client: Client, rule: String?,
        inspector: ImageInspector
    ) async -> Finding? {
        let known = platform(of: client)
        // Only indexes teach platforms, and an image by tag is judged only for a client whose
        // platform is known: most image answers are audited without decoding their JSON.
        if answer.manifest.mediaType.isImageManifest, case .tag = reference, known == nil { return nil }
        guard let decoded = inspector.decoded(answer.manifest) else { return nil }
        switch (decoded, reference) {
        case (.index(let index), _):
            servedIndex(index, to: client)
            // An index by digest follows its tag's HEAD: judge it once, by tag.
            guard case .tag(let tag) = reference, let known else { return nil }
            let platforms = Self.listedPlatforms(of: index)
            guard !platforms.isEmpty, !platforms.contains(where: { $0.matches(known.platform) }) else { return nil }
            return await record(
                kind: .indexLacksPlatform, repository: route.key, reference: tag.value, client: client, clientPlatform: known.platform,
                imagePlatforms: platforms, rule: rule, source: known.source
            )
        case (.image, .digest(let digest)):
            let listed = fetchedChild(digest, by: client)
            // Only a platform the client stated can disagree with the child it chose.
            guard let listed, let known, known.source != .learned, !listed.matches(known.platform) else { return nil }
            return await record(
                kind: .childOfOtherPlatform, repository: route.key, reference: digest.description, client: client,
                clientPlatform: known.platform, imagePlatforms: [listed], rule: rule, source: known.source
            )
        case (.image(let image), .tag(let tag)):
            guard let known, let platform = try? await inspector.platform(of: image, route: route), !platform.matches(known.platform)
            else {
                return nil
            }
            return await record(
                kind: .singlePlatform, repository: route.key, reference: tag.value, client: client, clientPlatform: known.platform,
                imagePlatforms: [platform], rule: rule, source: known.source
            )
        }
    }
}

extension PlatformAuditor {
    /// ``audit(_:route:reference:client:rule:inspector:)`` for an answer served from memory,
    /// without waiting: true when it finds no mismatch (after learning what `audit` learns),
    /// false, having changed nothing, when it would find one or cannot tell without reading a
    /// config: the full path then audits and records it.
    func auditWarm(_ answer: ManifestAnswer, reference: ManifestReference, client: Client, inspector: ImageInspector) -> Bool {
        let known = platform(of: client)
        if answer.manifest.mediaType.isImageManifest, case .tag = reference, known == nil { return true }
        guard let decoded = inspector.decoded(answer.manifest) else { return true }
        switch (decoded, reference) {
        case (.index(let index), _):
            if case .tag = reference, let known {
                let platforms = Self.listedPlatforms(of: index)
                if !platforms.isEmpty, !platforms.contains(where: { $0.matches(known.platform) }) { return false }
            }
            servedIndex(index, to: client)
            return true
        case (.image, .digest(let digest)):
            if let known, known.source != .learned, let listed = listedChild(digest, for: client), !listed.matches(known.platform) {
                return false
            }
            _ = fetchedChild(digest, by: client)
            return true
        case (.image(let image), .tag):
            guard let known, let platform = inspector.recentPlatforms.value(for: image.config.digest) else { return known == nil }
            return platform.matches(known.platform)
        }
    }
}
