import Cache
import Foundation
import OCI
import Policies

/// Manifest answers the full read path gave, kept for as long as it would give them again
/// unchanged: a tag until its TTL runs out (the full path then revalidates it upstream), a
/// digest for as long as it stays in memory (content never changes under a digest, and the
/// full path checked that the name may read it). Only plain answers are kept: not
/// synthesized, not stale; each client's platform is audited again when it is served.
final class WarmManifests: Sendable {
    struct Key: Hashable, Sendable {
        let repository: RepositoryKey
        let reference: ManifestReference
        /// The client's `Accept`, reduced to the manifest types Archway knows.
        let accepting: [String]
    }

    private struct Entry: Sendable {
        let manifest: Manifest
        let freshUntil: Date
    }

    private let entries = RecentlyUsed<Key, Entry>(budget: 16 << 20) { $0.manifest.bytes.count + 256 }

    func manifest(for key: Key, at date: Date) -> Manifest? {
        guard let entry = entries.value(for: key), entry.freshUntil > date else { return nil }
        return entry.manifest
    }

    func remember(_ manifest: Manifest, for key: Key, until date: Date) {
        entries.set(Entry(manifest: manifest, freshUntil: date), for: key)
    }
}

extension PullThroughRegistry {
    /// The answer ``manifest(_:_:accepting:client:)`` would give now, when it is in memory and
    /// nothing about it needs waiting: no upstream to ask, no rule to synthesize by, no config
    /// to read to audit the client's platform, no mismatch to record. It then has the same
    /// effects (counted, noted as accessed and pulled, the client's platform learned, the image
    /// offered to the binary scan). Nil otherwise: the caller takes the full path.
    public func warmManifest(_ route: UpstreamRouter.Route, _ reference: ManifestReference, accepting: [String], client: Client)
        -> ManifestAnswer?
    {
        let accepting = MediaType.manifestAccept(accepting)
        if case .tag(let tag) = reference, case .synthesize = policies.decision(repository: route.key, tag: tag) { return nil }
        let date = now()
        let key = WarmManifests.Key(repository: route.key, reference: reference, accepting: accepting)
        guard let manifest = warm.manifest(for: key, at: date) else { return nil }
        let answer = ManifestAnswer(manifest: manifest, cache: .hit)
        guard auditor.auditWarm(answer, reference: reference, client: client, inspector: inspector) else { return nil }
        recordServed(answer, route: route, reference: reference, at: date)
        offerToScan(manifest, route: route, reference: reference)
        return answer
    }

    /// Keeps a plain answer of the full path for ``warmManifest(_:_:accepting:client:)``.
    func rememberWarm(_ answer: ManifestAnswer, route: UpstreamRouter.Route, reference: ManifestReference, accepting: [String]) {
        guard var until = answer.freshUntil, answer.cache != .stale else { return }
        // Replicas share tags through the catalog: another one may move a tag at any time.
        if catalog.isShared { until = min(until, now().addingTimeInterval(1)) }
        warm.remember(answer.manifest, for: .init(repository: route.key, reference: reference, accepting: accepting), until: until)
    }
}
