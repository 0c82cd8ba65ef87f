import Cache
import Foundation
import LayerInspection
import Logging
import OCI
import Policies
import RegistryClient

/// The read path of the mirror, split the way distribution splits its proxy:
/// - ``BlobService``: blobs, stored or through the one download of a digest;
/// - ``ManifestService``: manifests by tag and digest, tag lists;
/// - ``IndexSynthesizer``: indexes for the tags a policy rule rewrites;
/// - ``PlatformAuditor``: what each pull means for the client's platform;
/// - ``BinaryVerifier``: what images' binaries really are, found in the background;
/// over ``ContentAccess`` (which names may read which digest) and ``ImageInspector``.
///
/// This type routes a request to them and is what the HTTP surface and the command line call.
/// Errors come out as ``RegistryError``s (or ``RangeNotSatisfiable``), ready for the wire.
public struct PullThroughRegistry: Sendable {
    public let router: UpstreamRouter
    /// The policies in force (reloaded on SIGHUP).
    public let policyStore: PolicyStore
    public var policies: PolicySet { policyStore.current }
    public let auditor: PlatformAuditor
    /// Scans images' binaries in the background; nil when that is turned off.
    public let binaries: BinaryVerifier?
    /// What the read path remembers for the operator's page: traffic by minute, pulls, syntheses.
    public let operations: OperationsRecord
    let store: any BlobStore
    let catalog: any Catalog
    let blobs: BlobService
    let manifests: ManifestService
    let synthesizer: IndexSynthesizer
    let inspector: ImageInspector
    /// Plain answers, for the warm path (``warmManifest(_:_:accepting:client:)``).
    let warm = WarmManifests()
    let offline: Bool
    let now: @Sendable () -> Date
    /// What a stated platform without an image gets, unless the rule that answered says otherwise.
    public let mismatch: MismatchAction

    /// The read path over a store and a catalog. The composition root passes the one `evictor`
    /// and `auditor` it also uses elsewhere; without them the registry makes its own (an evictor
    /// without a size limit).
    public init(
        router: UpstreamRouter,
        policies: PolicySet = .empty,
        store: any BlobStore,
        catalog: any Catalog,
        evictor: Evictor? = nil,
        auditor: PlatformAuditor? = nil,
        tagTTL: Duration = .seconds(300),
        offline: Bool = false,
        mismatch: MismatchAction = .warn,
        binaryScan: ScanLimits? = nil,
        now: @escaping @Sendable () -> Date = Date.init,
        logger: Logger
    ) {
        self.mismatch = mismatch
        let operations = OperationsRecord(traffic: TrafficHistory(now: now), pulls: PullStatistics(), syntheses: SynthesisLog())
        self.operations = operations
        let metrics = CacheMetrics(history: operations.traffic)
        let access = ContentAccess(router: router, catalog: catalog, offline: offline, logger: logger)
        let auditor = auditor ?? PlatformAuditor(catalog: catalog, logger: logger, now: now)
        let binaries = binaryScan.map {
            BinaryVerifier(store: store, catalog: catalog, auditor: auditor, limits: $0, logger: logger, now: now)
        }
        var blobs = BlobService(
            store: store, catalog: catalog, access: access, evictor: evictor ?? Evictor(store: store, catalog: catalog, maximumSize: nil),
            metrics: metrics, offline: offline, now: now, logger: logger)
        if let binaries { blobs.stored = { binaries.blobStored($0) } }
        self.binaries = binaries
        let manifests = ManifestService(
            store: store, catalog: catalog, access: access, metrics: metrics, tagTTL: tagTTL, offline: offline, now: now, logger: logger)
        let inspector = ImageInspector(blobs: blobs)
        self.router = router
        self.policyStore = PolicyStore(policies)
        self.auditor = auditor
        self.store = store
        self.catalog = catalog
        self.blobs = blobs
        self.manifests = manifests
        self.inspector = inspector
        self.synthesizer = IndexSynthesizer(
            router: router, store: store, catalog: catalog, manifests: manifests, inspector: inspector, binaries: binaries,
            log: operations.syntheses, tagTTL: tagTTL,
            offline: offline, now: now, logger: logger)
        self.offline = offline
        self.now = now
    }

    /// Where a name a client asked for goes: resolved once per request, then passed to the
    /// entry points below. Throws for an unknown `ns` and for a name the allow list refuses.
    public func resolve(_ name: RepositoryName, namespace: String?) throws(RegistryError) -> UpstreamRouter.Route {
        try router.route(name, namespace: namespace)
    }

    // MARK: - Manifests

    /// A manifest by tag or digest, of the repository a client names. A HEAD asks the same
    /// question: the answer's bytes are simply not sent.
    public func manifest(
        _ name: RepositoryName,
        _ reference: ManifestReference,
        namespace: String?,
        accepting: [String],
        client: Client = .unknown
    ) async throws -> ManifestAnswer {
        try await manifest(try resolve(name, namespace: namespace), reference, accepting: accepting, client: client)
    }

    /// A manifest of `route` by tag or digest: synthesized when a rule rewrites the tag, then
    /// audited for the client's platform.
    public func manifest(_ route: UpstreamRouter.Route, _ reference: ManifestReference, accepting: [String], client: Client = .unknown)
        async throws -> ManifestAnswer
    {
        // Only types Archway knows reach a cache key or the upstream.
        let accepting = MediaType.manifestAccept(accepting)
        var answer: ManifestAnswer
        var rule: PolicyRule?
        switch reference {
        case .digest(let digest):
            answer = try await manifests.manifest(route, digest: digest, accepting: accepting)
        case .tag(let tag):
            if case .synthesize(let policy) = policies.decision(repository: route.key, tag: tag) {
                rule = policy
                answer = try await synthesizer.synthesized(
                    route, tag: tag, rule: policy, accepting: accepting, clientPlatform: auditor.platform(of: client)?.platform
                )
            } else {
                answer = try await manifests.manifest(route, tag: tag, accepting: accepting)
            }
        }
        recordServed(answer, route: route, reference: reference, at: now())
        let finding = await auditor.audit(
            answer, route: route, reference: reference, client: client, rule: rule?.name, inspector: inspector)
        answer.warning = finding?.warning
        if rule == nil { rememberWarm(answer, route: route, reference: reference, accepting: accepting) }
        offerToScan(answer.manifest, route: route, reference: reference)
        if let finding, finding.isRefusable, (rule?.mismatch ?? mismatch) == .refuse {
            let fix =
                if let rule {
                    // The policy file by name only: a client learns no folder of the server.
                    "rule '\(rule.name)' (\((rule.location.file as NSString).lastPathComponent):\(rule.location.line)) has no member for \(finding.clientPlatform)"
                } else {
                    "a policy rule can add one (archway mismatches suggests it)"
                }
            throw RegistryError(.manifestUnknown, "\(finding.summary); refused at pull time rather than failing at run time: \(fix)")
        }
        return answer
    }

    /// What serving a manifest answer does, whichever path served it: counted, its content
    /// noted as accessed (a miss was just stored), the pull recorded.
    func recordServed(_ answer: ManifestAnswer, route: UpstreamRouter.Route, reference: ManifestReference, at date: Date) {
        manifests.metrics.count(answer.cache, manifest: true)
        if answer.cache != .miss { catalog.noteAccess(answer.manifest.digest, at: date) }
        let tag: String? = if case .tag(let tag) = reference { tag.value } else { nil }
        operations.pulls.pulled(route.key, tag: tag, digest: answer.manifest.digest, at: date)
    }

    /// An image served is offered to the binary scan (which takes each digest once).
    func offerToScan(_ manifest: Manifest, route: UpstreamRouter.Route, reference: ManifestReference) {
        guard let binaries, manifest.mediaType.isImageManifest, binaries.wants(manifest.digest),
            case .image(let image) = inspector.decoded(manifest)
        else { return }
        let asked = if case .tag(let tag) = reference { tag.value } else { manifest.digest.description }
        binaries.noteServed(manifest.digest, manifest: image, route: route, reference: asked)
    }

    /// The referrers of `subject` in `route` (OCI distribution 1.1), those of `artifactType`
    /// only when it is given.
    public func referrers(_ route: UpstreamRouter.Route, subject: Digest, artifactType: String?) async throws -> Referrers {
        let (index, cache) = try await manifests.referrers(route, subject: subject)
        manifests.metrics.count(cache, manifest: true)
        guard let artifactType else { return Referrers(index: index, filtered: false, cache: cache) }
        var filtered = index
        filtered.manifests = index.manifests.filter { $0.artifactType == artifactType }
        return Referrers(index: filtered, filtered: true, cache: cache)
    }

    /// What synthesizing `tag` by `rule` gives now (`archway policy preview`).
    public func synthesize(_ route: UpstreamRouter.Route, tag: Tag, rule: PolicyRule) async throws -> SynthesisReport {
        try await synthesizer.synthesize(route, tag: tag, rule: rule)
    }

    /// What each image of a reference is (every platform of an index, or those of
    /// `platforms`): its config's platform and its binaries, from the catalog when they were
    /// scanned, else scanned now (its blobs fetched through the cache as a pull would).
    public func inspect(_ route: UpstreamRouter.Route, _ reference: ManifestReference, platforms: [Platform] = []) async throws
        -> [ImageInspection]
    {
        let answer = try await manifest(route, reference, accepting: MediaType.anyManifest)
        var images: [(listed: Platform?, digest: Digest)] = []
        switch inspector.decoded(answer.manifest) {
        case .index(let index):
            for child in index.manifests where !child.isAttestation && child.mediaType.isImageManifest {
                let listed = child.platform?.normalized()
                if !platforms.isEmpty, !platforms.contains(where: { listed?.matches($0) == true }) { continue }
                images.append((listed, child.digest))
            }
        case .image:
            images.append((nil, answer.manifest.digest))
        case nil:
            throw RegistryError(.manifestInvalid, "\(route.key):\(reference) does not decode")
        }
        let verifier =
            binaries
            ?? BinaryVerifier(store: store, catalog: catalog, auditor: auditor, limits: ScanLimits(), logger: manifests.logger, now: now)
        var result: [ImageInspection] = []
        for (listed, digest) in images {
            let child = try await manifests.manifest(route, digest: digest, accepting: MediaType.anyManifest)
            guard case .image(let image) = inspector.decoded(child.manifest) else { continue }
            if let recorded = await verifier.recorded(digest), let declared = try? Platform(parsing: recorded.platform) {
                result.append(
                    ImageInspection(
                        listed: listed, digest: digest, declared: declared, report: recorded.report, scannedAt: recorded.scannedAt))
                continue
            }
            let asked = if case .tag(let tag) = reference, listed == nil { tag.value } else { digest.description }
            let read: (Digest) async throws -> any BlobReading = { blob in try await self.blobs.blob(route, blob, rangeHeader: nil).reader }
            let scanned = await verifier.verify(digest, manifest: image, route: route, reference: asked, offload: { try $0() }, read: read)
            let declared: Platform
            if let scanned { declared = scanned.platform } else { declared = try await inspector.platform(of: image, route: route) }
            result.append(
                ImageInspection(
                    listed: listed, digest: digest, declared: declared, report: scanned?.report, scannedAt: scanned.map { _ in now() }))
        }
        return result
    }

    // MARK: - Blobs

    /// A blob, or the part of it a `Range` header asks for, of the repository a client names.
    public func blob(_ name: RepositoryName, _ digest: Digest, namespace: String?, rangeHeader: String?) async throws -> BlobAnswer {
        try await blob(try resolve(name, namespace: namespace), digest, rangeHeader: rangeHeader)
    }

    /// A blob of `route`: stored blobs are served from the store whichever repository asks (when
    /// the name may read them); a miss starts (or joins) the one download of that digest and
    /// streams it as it arrives.
    public func blob(_ route: UpstreamRouter.Route, _ digest: Digest, rangeHeader: String?) async throws -> BlobAnswer {
        try await blobs.blob(route, digest, rangeHeader: rangeHeader)
    }

    /// This replica's download of `digest` (or the content), for another replica that streams it.
    public func peerDownload(_ digest: Digest) async throws -> BlobAnswer? {
        try await blobs.peerDownload(digest)
    }

    /// Where a client may GET a stored blob of `route` itself (a presigned URL of the object
    /// store, with `storage.s3.redirect`); nil when Archway serves it.
    public func blobRedirect(_ route: UpstreamRouter.Route, _ digest: Digest) async throws -> String? {
        try await blobs.directURL(route, digest)
    }

    // MARK: - Tags

    public func tags(_ name: RepositoryName, namespace: String?, count: Int?, last: String?) async throws -> TagList {
        try await tags(try resolve(name, namespace: namespace), name: name, count: count, last: last)
    }

    /// A page of the tags of `route`, which the client asked for as `name`. A repository with
    /// rules may exist only through them: its own tags, when it has any, plus every tag the rules
    /// can synthesize.
    public func tags(_ route: UpstreamRouter.Route, name: RepositoryName, count: Int?, last: String?) async throws -> TagList {
        if offline { throw RegistryError(.unavailable, "offline: tag lists are not cached") }
        let rules = policies.rules(for: route.key)
        if rules.isEmpty { return try await manifests.tags(route, name: name, count: count, last: last) }
        var tags = try await manifests.allTags(route)
        tags.formUnion(try await synthesizer.synthesizableTags(route, rules: rules))
        return TagList.page(of: tags, name: name, count: count, last: last, hasMore: false)
    }
}

/// One image of a reference, as `archway inspect` shows it.
public struct ImageInspection: Sendable {
    /// The platform an index lists it for (nil for a single image).
    public var listed: Platform?
    public var digest: Digest
    /// The platform its config states.
    public var declared: Platform
    /// What its binaries are; nil when its layers could not be read.
    public var report: BinaryReport?
    public var scannedAt: Date?
}

/// What the read path remembers for the operator's page.
public struct OperationsRecord: Sendable {
    /// Hits, misses and bytes, minute by minute over the last day.
    public let traffic: TrafficHistory
    /// Pulls by repository and tag, since the start.
    public let pulls: PullStatistics
    /// The last synthesis of each rewritten tag.
    public let syntheses: SynthesisLog
    /// What stored manifests hold (platforms, bytes), remembered for the page's refreshes.
    let contents = RecentlyUsed<Digest, TagContents>(budget: 4096)
}
