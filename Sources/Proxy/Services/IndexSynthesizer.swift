import Cache
import CoreMetrics
import Foundation
import LayerInspection
import Logging
import NIOCore
import NIOFoundationCompat
import OCI
import Policies
import RegistryClient

/// Indexes for tags a policy rule rewrites: the requested tag and every member resolved
/// concurrently, one deterministic index built from their platforms, cached like a tag.
struct IndexSynthesizer: Sendable {
    let router: UpstreamRouter
    let store: any BlobStore
    let catalog: any Catalog
    let manifests: ManifestService
    let inspector: ImageInspector
    let binaries: BinaryVerifier?
    let log: SynthesisLog
    let tagTTL: Duration
    let offline: Bool
    let now: @Sendable () -> Date
    let logger: Logger

    /// A tag a rule rewrites: the synthesized index, trusted for `tagTTL` like any tag, then
    /// synthesized again (members revalidate with HEADs; unchanged members give the same
    /// digest). When members cannot be asked, the last index is served, stale.
    func synthesized(_ route: UpstreamRouter.Route, tag: Tag, rule: PolicyRule, accepting: [String], clientPlatform: Platform?) async throws
        -> ManifestAnswer
    {
        // The rule is part of the key: a changed rule (after a reload) never serves the old index.
        let key = TagKey(
            upstream: route.upstream.name, repository: route.repository.value, tag: tag.value, synthesizedBy: rule.fingerprint)
        var cached: Manifest?
        if let record = try await catalog.tag(key) {
            cached = try await manifests.storedManifest(record.descriptor.digest, mediaType: record.descriptor.mediaType)
            if let cached, offline || now().timeIntervalSince(record.validatedAt) < tagTTL.totalSeconds {
                return try await adapt(
                    ManifestAnswer(manifest: cached, cache: .hit), route: route, accepting: accepting, clientPlatform: clientPlatform)
            }
        }
        if offline {
            throw offlineMiss("tag \(route.key):\(tag)")
        }
        let report = try await synthesize(route, tag: tag, rule: rule)
        log.record(report, repository: route.key, tag: tag.value, at: now())
        if report.isIncomplete, let cached {
            logger.warning(
                "serving the last synthesized index", metadata: ["repository": "\(route.key)", "tag": "\(tag)", "rule": "\(rule.name)"])
            return try await adapt(
                ManifestAnswer(manifest: cached, cache: .stale), route: route, accepting: accepting, clientPlatform: clientPlatform)
        }
        guard let index = report.index else {
            if report.isIncomplete {
                throw RegistryError(
                    .unavailable, "no member of rule '\(rule.name)' could be fetched: \(report.warnings.joined(separator: "; "))")
            }
            throw RegistryError(.manifestUnknown, "neither \(route.key):\(tag) nor any member of rule '\(rule.name)' exists upstream")
        }
        // Stored before its digest is ever returned: a HEAD by tag then a GET by digest works,
        // also from the cache once the upstream is gone.
        try await store.store(index.bytes, as: index.digest)
        try await catalog.recordManifest(index.descriptor, from: route.key, tag: key, at: now())
        let status: CacheStatus = report.usedStaleAnswers ? .stale : cached?.digest == index.digest ? .hit : .miss
        if status == .miss {
            Counter(label: "archway_synthesized_indexes_total", dimensions: [("rule", rule.name)]).increment()
            logger.info(
                "synthesized an index",
                metadata: [
                    "repository": "\(route.key)", "tag": "\(tag)", "rule": "\(rule.name)", "digest": "\(index.digest)",
                    "platforms": "\(report.children.map(\.platform.description).joined(separator: ","))",
                ]
            )
        }
        for warning in report.warnings {
            logger.warning(
                "policy member", metadata: ["rule": "\(rule.name)", "repository": "\(route.key)", "tag": "\(tag)", "detail": "\(warning)"])
        }
        return try await adapt(
            ManifestAnswer(manifest: index, cache: status), route: route, accepting: accepting, clientPlatform: clientPlatform)
    }

    /// Resolves the requested tag and every member concurrently and builds the index.
    func synthesize(_ route: UpstreamRouter.Route, tag: Tag, rule: PolicyRule) async throws -> SynthesisReport {
        let requested = MemberReference(registry: route.upstream.name, repository: route.repository, reference: .tag(tag))
        var sources: [(label: String, reference: MemberReference?, declared: Platform?)] = [("requested tag \(requested)", requested, nil)]
        for member in rule.members {
            let reference = member.expand(repository: route.key, tag: tag)
            sources.append((reference?.description ?? member.from, reference, member.platform))
        }
        let resolved = await withTaskGroup(of: (Int, Resolution).self) { group in
            for (position, source) in sources.enumerated() {
                group.addTask {
                    guard let reference = source.reference else { return (position, .missing("does not expand to a valid reference")) }
                    return (position, await self.resolve(reference, declared: source.declared, for: route))
                }
            }
            var results = [Resolution](repeating: .missing(""), count: sources.count)
            for await (position, resolution) in group { results[position] = resolution }
            return results
        }
        var members: [SynthesisReport.Member] = []
        var usedStaleAnswers = false
        var chosen: [String: (platform: Platform, descriptor: Descriptor, source: String)] = [:]
        for (position, resolution) in resolved.enumerated() {
            let label = sources[position].label
            switch resolution {
            case .children(let children, let stale):
                usedStaleAnswers = usedStaleAnswers || stale
                for child in children where chosen[child.platform.key] == nil {
                    chosen[child.platform.key] = (child.platform, child.descriptor, label)
                }
                // Children (and their blobs, once fetched) are served under the requested name:
                // remember where they live.
                if let reference = sources[position].reference,
                    let source = router.route(upstream: reference.registry, repository: reference.repository)
                {
                    try await catalog.link(children.map(\.descriptor.digest), under: route.key, source: source.key)
                }
                members.append(.init(source: label, outcome: .contributed(children.map(\.platform))))
            case .missing(let why):
                // The requested tag not existing is the usual case, not worth a warning.
                if position > 0 { members.append(.init(source: label, outcome: .missing(why))) }
            case .excluded(let why):
                members.append(.init(source: label, outcome: .excluded(why)))
            case .unavailable(let why):
                members.append(.init(source: label, outcome: .unavailable(why)))
            }
        }
        let children = chosen.values.sorted { $0.platform.sortKey.lexicographicallyPrecedes($1.platform.sortKey) }
        let index = children.isEmpty ? nil : Self.index(of: children.map { ($0.platform, $0.descriptor) })
        return SynthesisReport(rule: rule.name, index: index, members: members, children: children, usedStaleAnswers: usedStaleAnswers)
    }

    enum Resolution: Sendable {
        /// The member's platforms; `stale` when the upstream could not confirm it.
        case children([(platform: Platform, descriptor: Descriptor)], stale: Bool)
        case missing(String)
        case excluded(String)
        case unavailable(String)
    }

    /// One member: an index contributes its children (attestations aside), an image manifest
    /// itself with the platform its config states.
    private func resolve(_ member: MemberReference, declared: Platform?, for requested: UpstreamRouter.Route) async -> Resolution {
        guard let route = router.route(upstream: member.registry, repository: member.repository) else {
            return .missing("\(member.registry) is not a configured upstream")
        }
        // A rule never publishes a private upstream's images under a name anonymous clients read.
        if route.isPrivate, !requested.isPrivate {
            return .excluded("\(member.registry) is a private upstream and \(requested.upstream.name) is not")
        }
        do {
            let answer: ManifestAnswer
            switch member.reference {
            case .tag(let tag): answer = try await manifests.manifest(route, tag: tag, accepting: MediaType.anyManifest)
            case .digest(let digest): answer = try await manifests.manifest(route, digest: digest, accepting: MediaType.anyManifest)
            }
            switch try answer.manifest.decoded() {
            case .index(let index):
                let children = index.manifests.compactMap { child -> (Platform, Descriptor)? in
                    guard let platform = child.platform, !child.isAttestation, !platform.isUnknown else { return nil }
                    return (platform.normalized(), Descriptor(mediaType: child.mediaType, digest: child.digest, size: child.size))
                }
                if let declared, !children.contains(where: { $0.0.matches(declared) }) {
                    return .excluded("declared platform \(declared) is not among its index's platforms")
                }
                var kept = declared.map { declared in children.filter { $0.0.matches(declared) } } ?? children
                // Children whose binaries contradict the platform the index lists them for.
                var contradictions: [(digest: Digest, why: String)] = []
                for child in kept {
                    if let why = await binaryContradiction(child.1.digest, platform: child.0) {
                        contradictions.append((child.1.digest, "\(child.0): \(why)"))
                    }
                }
                kept.removeAll { child in contradictions.contains { $0.digest == child.1.digest } }
                if kept.isEmpty, !contradictions.isEmpty { return .excluded(contradictions.map(\.why).joined(separator: "; ")) }
                return kept.isEmpty ? .missing("its index lists no platform") : .children(kept, stale: answer.cache == .stale)
            case .image(let image):
                let platform = try await inspector.platform(of: image, route: route)
                if let declared, !platform.matches(declared) {
                    return .excluded("declared platform \(declared), but its config says \(platform)")
                }
                if let why = await binaryContradiction(answer.manifest.digest, platform: platform) {
                    return .excluded("its config says \(platform), but \(why)")
                }
                return .children([(platform, answer.manifest.descriptor)], stale: answer.cache == .stale)
            }
        } catch let error as RegistryError {
            return error.code == .unavailable ? .unavailable(error.message) : .missing(error.message)
        } catch {
            return .missing("\(error)")
        }
    }

    /// Why an image's binaries contradict `platform`, when a scan found they do.
    private func binaryContradiction(_ image: Digest, platform: Platform) async -> String? {
        guard let binaries, let recorded = await binaries.recorded(image),
            recorded.report.contradicts(architecture: platform.normalized().architecture)
        else { return nil }
        let report = recorded.report
        return "its entrypoint \(report.binary ?? "?") is \(report.elf ?? "?") (\(report.architecture ?? "?"))"
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

    /// The index of these children: a Docker manifest list when every child is a Docker v2
    /// manifest, else an OCI index; canonical JSON, children in platform order, no timestamps,
    /// so the same children give the same digest on every replica and restart.
    static func index(of children: [(Platform, Descriptor)]) -> Manifest {
        let docker = children.allSatisfy { $0.1.mediaType == .dockerManifest }
        let mediaType: MediaType = docker ? .dockerManifestList : .ociIndex
        let index = ImageIndex(
            schemaVersion: 2,
            mediaType: mediaType,
            manifests: children.map { platform, descriptor in
                Descriptor(mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size, platform: platform)
            }
        )
        return Manifest(bytes: index.canonicalJSON(), mediaType: mediaType)
    }

    /// An index answer for a client that may not take indexes: the child for its platform
    /// when known, else a message naming the platforms there are.
    func adapt(_ answer: ManifestAnswer, route: UpstreamRouter.Route, accepting: [String], clientPlatform: Platform?) async throws
        -> ManifestAnswer
    {
        if ManifestService.accepts(accepting, answer.manifest.mediaType) { return answer }
        guard case .index(let index) = inspector.decoded(answer.manifest) else { return answer }
        let platforms = index.manifests.compactMap(\.platform)
        if let clientPlatform, let child = index.manifests.first(where: { $0.platform?.matches(clientPlatform) == true }) {
            var childAnswer = try await manifests.manifest(route, digest: child.digest, accepting: accepting)
            childAnswer.cache = answer.cache
            return childAnswer
        }
        throw RegistryError(
            .manifestUnknown,
            "this tag is a multi-platform index (\(platforms.map(\.description).joined(separator: ", "))) and the request accepts no index type"
                + (clientPlatform.map { " nor has a child for \($0)" } ?? "; state the platform with an Archway-Platform header")
        )
    }
}

extension Platform {
    /// Equal for platforms that are the same after normalization.
    var key: String { sortKey.joined(separator: "/") }

    /// The order of children in a synthesized index: os, architecture, variant, os.version.
    var sortKey: [String] {
        let normalized = self.normalized()
        return [normalized.os, normalized.architecture, normalized.variant ?? "", normalized.osVersion ?? ""]
    }
}
