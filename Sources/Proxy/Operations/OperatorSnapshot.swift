import Cache
import Foundation
import OCI
import Policies
import RegistryClient

/// What the operator's page shows, section by section, as plain values (and as the JSON of
/// `/_archway/api/...`). Nothing secret is in it: no credentials, keys or file contents.
public enum OperatorSnapshot {
    /// Hits, misses and bytes over a window.
    public struct Traffic: Sendable, Hashable, Codable {
        public var hits: Int
        public var misses: Int
        public var stale: Int
        public var bytesServed: Int64
        public var bytesFetched: Int64
        /// Hits over all answers; nil without answers.
        public var hitRatio: Double?

        init(_ bucket: TrafficHistory.Bucket) {
            hits = bucket.hits
            misses = bucket.misses
            stale = bucket.stale
            bytesServed = bucket.bytesServed
            bytesFetched = bucket.bytesFetched
            hitRatio = bucket.answers == 0 ? nil : Double(bucket.hits) / Double(bucket.answers)
        }
    }

    public struct Overview: Sendable, Hashable, Codable {
        public var cacheBytes: Int64
        public var cacheLimit: Int64?
        public var lastHour: Traffic
        public var lastDay: Traffic
        /// The last hour, minute by minute, oldest first.
        public var minutes: [TrafficHistory.Bucket]
        /// The last day, hour by hour, oldest first.
        public var hours: [TrafficHistory.Bucket]
        public var downloads: [Download]
        /// Images waiting for the scan of their binaries.
        public var scansWaiting: Int?
    }

    /// A download running now, and how far it has come.
    public struct Download: Sendable, Hashable, Codable {
        public var digest: Digest
        public var repository: String?
        public var expected: Int64?
        public var written: Int64
        public var startedAt: Date
    }

    public struct Upstream: Sendable, Hashable, Codable {
        public var name: String
        public var aliases: [String]
        public var isPrivate: Bool
        /// Whether the last exchange got an answer below 500; nil before the first.
        public var reachable: Bool?
        public var lastError: String?
        public var lastErrorAt: Date?
        public var averageLatencyMilliseconds: Double?
        /// Docker Hub's `ratelimit-remaining`, as last sent.
        public var rateLimitRemaining: Int?
    }

    /// A repository with cached tags.
    public struct CachedRepository: Sendable, Hashable, Codable {
        /// `upstream/repository`.
        public var repository: String
        public var tags: Int
        public var lastValidated: Date
    }

    /// A row of the mismatch report.
    public struct Mismatch: Sendable, Hashable, Codable {
        public var repository: String
        public var reference: String
        public var kind: String
        public var clientPlatform: String
        public var imagePlatforms: String
        public var count: Int
        public var lastSeen: Date
        public var suggestion: String?

        public init(_ report: MismatchReport) {
            let mismatch = report.mismatch
            repository = mismatch.repository
            reference = mismatch.reference
            kind = mismatch.kind
            clientPlatform = mismatch.clientPlatform
            imagePlatforms = mismatch.imagePlatforms
            count = mismatch.count
            lastSeen = mismatch.lastSeen
            suggestion = report.suggestion
        }
    }

    public struct PulledTag: Sendable, Hashable, Codable {
        public var name: String
        public var digest: Digest
        public var pulls: Int
        public var lastPull: Date
        /// The platforms the tag serves (an index's children, or the image's config), when stored.
        public var platforms: [String]
        /// The bytes of its images (configs and layers, every platform), when stored.
        public var bytes: Int64?
    }

    public struct PulledRepository: Sendable, Hashable, Codable {
        public var name: String
        public var pulls: Int
        public var lastPull: Date
        public var tags: [PulledTag]
    }

    public struct Images: Sendable, Hashable, Codable {
        /// Since the start, most pulled first.
        public var mostPulled: [PulledRepository]
        /// Every repository with cached tags, a page of them.
        public var cached: [CachedRepository]
        /// 1-based.
        public var page: Int
        public var pageSize: Int
        public var total: Int
        public var pages: Int { max(1, (total + pageSize - 1) / pageSize) }
    }

    public struct Policy: Sendable, Hashable, Codable {
        public var name: String
        public var repository: String
        public var tags: [String]
        /// `policies/app.yaml:3`, the file by name only.
        public var location: String
        public var members: [String]
        public var mismatch: String?
        public var synthesized: [SynthesisLog.Entry]
    }
}

/// What a tag's stored manifest says: its platforms and the bytes of its images.
struct TagContents: Sendable {
    var platforms: [String]
    var bytes: Int64?
}

extension PullThroughRegistry {
    /// Repositories shown as most pulled, and tags of each.
    static let mostPulledShown = 20
    static let tagsShown = 8

    public func overview() async -> OperatorSnapshot.Overview {
        let minutes = operations.traffic.lastMinutes(TrafficHistory.minutes)
        let lastHour = Array(minutes.suffix(60))
        var hours: [TrafficHistory.Bucket] = []
        for start in stride(from: 0, to: minutes.count, by: 60) {
            hours.append(Array(minutes[start..<min(start + 60, minutes.count)]).total)
        }
        return OperatorSnapshot.Overview(
            cacheBytes: (try? await catalog.totalSize()) ?? 0, cacheLimit: blobs.evictor.maximumSize,
            lastHour: .init(lastHour.total), lastDay: .init(minutes.total), minutes: lastHour, hours: hours,
            downloads: await store.downloadsInProgress().map {
                .init(digest: $0.digest, repository: $0.repository, expected: $0.expected, written: $0.written, startedAt: $0.startedAt)
            }, scansWaiting: binaries?.waiting)
    }

    public func upstreamsStatus() -> [OperatorSnapshot.Upstream] {
        router.upstreams.map { entry in
            let health = entry.upstream.health?.snapshot
            return OperatorSnapshot.Upstream(
                name: entry.upstream.name, aliases: entry.aliases, isPrivate: entry.isPrivate, reachable: health?.reachable,
                lastError: health?.lastError, lastErrorAt: health?.lastErrorAt,
                averageLatencyMilliseconds: health?.averageLatencyMilliseconds,
                rateLimitRemaining: health?.rateLimitRemaining)
        }
    }

    /// The most pulled repositories, and page `page` (1-based) of the cached ones.
    public func images(page: Int, pageSize: Int = 50) async throws -> OperatorSnapshot.Images {
        let page = max(1, page)
        let pageSize = min(max(1, pageSize), 500)
        var pulled: [OperatorSnapshot.PulledRepository] = []
        for repository in operations.pulls.mostPulled(Self.mostPulledShown) {
            var tags: [OperatorSnapshot.PulledTag] = []
            for tag in repository.tags.values.sorted(by: { ($0.pulls, $0.lastPull) > ($1.pulls, $1.lastPull) }).prefix(Self.tagsShown) {
                let contents = await contents(of: tag.digest)
                tags.append(
                    OperatorSnapshot.PulledTag(
                        name: tag.name, digest: tag.digest, pulls: tag.pulls, lastPull: tag.lastPull, platforms: contents.platforms,
                        bytes: contents.bytes))
            }
            pulled.append(.init(name: repository.name, pulls: repository.pulls, lastPull: repository.lastPull, tags: tags))
        }
        let (total, cached) = try await catalog.repositories(offset: (page - 1) * pageSize, limit: pageSize)
        return OperatorSnapshot.Images(
            mostPulled: pulled,
            cached: cached.map { .init(repository: "\($0.upstream)/\($0.repository)", tags: $0.tags, lastValidated: $0.lastValidated) },
            page: page, pageSize: pageSize, total: total)
    }

    public func policiesStatus() -> [OperatorSnapshot.Policy] {
        policies.rules.map { rule in
            OperatorSnapshot.Policy(
                name: rule.name, repository: rule.repository.pattern, tags: rule.tags.map(\.pattern),
                location: "\((rule.location.file as NSString).lastPathComponent):\(rule.location.line)",
                members: rule.members.map { member in member.from + (member.platform.map { " as \($0)" } ?? "") },
                mismatch: rule.mismatch?.rawValue, synthesized: operations.syntheses.entries(rule: rule.name))
        }
    }

    /// A stored manifest's platforms and bytes (remembered by digest: the page asks every few
    /// seconds). Unknown parts stay empty: the page never fetches anything upstream.
    func contents(of digest: Digest) async -> TagContents {
        if let known = operations.contents.value(for: digest) { return known }
        guard let manifest = try? await manifests.storedManifest(digest, mediaType: nil), let decoded = inspector.decoded(manifest) else {
            return TagContents(platforms: [], bytes: nil)
        }
        var result: TagContents
        switch decoded {
        case .index(let index):
            var bytes: Int64 = 0
            var complete = true
            for child in index.manifests where !child.isAttestation {
                if let childManifest = try? await manifests.storedManifest(child.digest, mediaType: child.mediaType),
                    case .image(let image)? = inspector.decoded(childManifest)
                {
                    bytes += image.config.size + image.layers.reduce(0) { $0 + $1.size }
                } else {
                    complete = false
                }
            }
            let platforms = index.manifests.filter { !$0.isAttestation }.compactMap { $0.platform?.normalized().description }
            result = TagContents(platforms: platforms, bytes: complete ? bytes : nil)
        case .image(let image):
            var platforms: [String] = []
            if let config = try? await store.data(image.config.digest, limit: 1 << 20),
                let platform = try? ImageConfig.decode(config).platform.normalized()
            {
                platforms = [platform.description]
            }
            result = TagContents(platforms: platforms, bytes: image.config.size + image.layers.reduce(0) { $0 + $1.size })
        }
        if result.bytes != nil, !result.platforms.isEmpty { operations.contents.set(result, for: digest) }
        return result
    }
}
