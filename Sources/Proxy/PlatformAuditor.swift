import Cache
import CoreMetrics
import Foundation
import LayerInspection
import Logging
import OCI
import Synchronization

/// Knows which platform clients run on and records the pulls that would fail on it.
///
/// A client's platform comes from, in order: its `Archway-Platform` header, its User-Agent
/// (`os/linux arch/arm64`, as Docker and CRI-O send), or the child it chose from an index it was
/// served within the last hour (clients fetch their platform's child by digest), as long as all
/// the children it chose were of one platform. Unknown stays unknown: no event is ever invented.
public final class PlatformAuditor: Sendable {
    /// What kind of pull would break.
    public enum Kind: String, Sendable {
        /// A tag that is a single image of another platform.
        case singlePlatform = "single-platform"
        /// An index without a child for the client's platform.
        case indexLacksPlatform = "index-lacks-platform"
        /// A child fetched by digest that an index lists for another platform.
        case childOfOtherPlatform = "child-of-other-platform"
        /// An image whose config states one platform while the binary it runs is of another:
        /// every node of the stated platform that runs it fails with `exec format error`.
        case binaryPlatform = "binary-platform"
    }

    /// How a client's platform is known.
    public enum PlatformSource: String, Sendable {
        /// Its `Archway-Platform` header.
        case header
        /// Its User-Agent (`os/linux arch/arm64`).
        case userAgent = "user-agent"
        /// The child it chose from an index served to its address.
        case learned
    }

    static let memory: TimeInterval = 3600
    static let childrenRemembered = 512
    /// Client addresses remembered at most; beyond, the expired and then the oldest are forgotten.
    static let addressesRemembered = 10_000
    /// Image platforms named at most in a `Warning` header, a log line or a catalog row.
    static let platformsNamed = 16

    private struct Seen {
        var learned: (platform: Platform, at: Date)?
        /// The platforms of the children this address fetched, and when it last fetched each. An
        /// address that fetched children of more than one platform within ``memory`` is a copier
        /// (`skopeo copy --all`, a mirroring job, a conformance suite), not a node: it teaches none.
        var fetched: [String: Date] = [:]
        /// Children of indexes recently served to this address, with their platforms.
        var children: [Digest: Platform] = [:]
        var childrenAt: Date = .distantPast
    }

    private let seen = Mutex<[String: Seen]>([:])
    let catalog: any Catalog
    let logger: Logger
    let now: @Sendable () -> Date

    public init(catalog: any Catalog, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.catalog = catalog
        self.logger = logger
        self.now = now
    }

    /// The client's platform and how it is known.
    public func platform(of client: Client) -> (platform: Platform, source: PlatformSource)? {
        if let header = client.platformHeader, let platform = ClientPlatform.detect(header: header, userAgent: nil) {
            return (platform, .header)
        }
        if let platform = ClientPlatform.detect(header: nil, userAgent: client.userAgent) {
            return (platform, .userAgent)
        }
        guard let address = client.address else { return nil }
        let date = now()
        return seen.withLock { seen in
            guard let learned = seen[address]?.learned, date.timeIntervalSince(learned.at) < Self.memory else { return nil }
            return (learned.platform, .learned)
        }
    }

    /// Remembers an index's children as served to a client, to learn from its next fetch.
    func servedIndex(_ index: ImageIndex, to client: Client) {
        guard let address = client.address else { return }
        let date = now()
        seen.withLock { seen in
            var entry = seen[address] ?? Seen()
            if date.timeIntervalSince(entry.childrenAt) > Self.memory || entry.children.count > Self.childrenRemembered {
                entry.children = [:]
            }
            for child in index.manifests where entry.children.count < Self.childrenRemembered {
                if let platform = child.platform, !child.isAttestation, !platform.isUnknown {
                    entry.children[child.digest] = platform.normalized()
                }
            }
            entry.childrenAt = date
            if seen[address] == nil, seen.count >= Self.addressesRemembered { Self.prune(&seen, at: date) }
            seen[address] = entry
        }
    }

    /// Forgets addresses not heard from within ``memory``, then the oldest half if that was not
    /// enough: a scan of many addresses cannot grow this without bound.
    private static func prune(_ seen: inout [String: Seen], at date: Date) {
        seen = seen.filter { date.timeIntervalSince(max($0.value.childrenAt, $0.value.learned?.at ?? .distantPast)) < memory }
        guard seen.count >= addressesRemembered else { return }
        let newest = seen.sorted { $0.value.childrenAt > $1.value.childrenAt }.prefix(addressesRemembered / 2)
        seen = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }

    /// How many client addresses are remembered.
    var rememberedAddresses: Int { seen.withLock { $0.count } }

    /// Platforms as a short list: each once, at most ``platformsNamed``, then how many more.
    static func summary(_ platforms: [Platform]) -> String {
        var unique: [String] = []
        var known = Set<String>()
        for platform in platforms where known.insert(platform.description).inserted { unique.append(platform.description) }
        guard unique.count > platformsNamed else { return unique.joined(separator: ",") }
        return unique.prefix(platformsNamed).joined(separator: ",") + " and \(unique.count - platformsNamed) more"
    }

    /// The platform an index served to `client` listed for `digest`, learning nothing.
    func listedChild(_ digest: Digest, for client: Client) -> Platform? {
        guard let address = client.address else { return nil }
        let date = now()
        return seen.withLock { seen in
            guard let entry = seen[address], date.timeIntervalSince(entry.childrenAt) < Self.memory else { return nil }
            return entry.children[digest]
        }
    }

    /// A child fetched by digest: the platform an index served to this client listed it for.
    /// The client is then known to run on it, unless it fetched children of other platforms too
    /// within ``memory`` (a copier): then it is known to run on none.
    func fetchedChild(_ digest: Digest, by client: Client) -> Platform? {
        guard let address = client.address else { return nil }
        let date = now()
        return seen.withLock { seen in
            guard var entry = seen[address], date.timeIntervalSince(entry.childrenAt) < Self.memory, let platform = entry.children[digest]
            else { return nil }
            entry.fetched = entry.fetched.filter { date.timeIntervalSince($0.value) < Self.memory }
            if entry.fetched.count < Self.platformsNamed { entry.fetched[platform.description] = date }
            entry.learned = entry.fetched.count == 1 ? (platform, date) : nil
            seen[address] = entry
            return platform
        }
    }

    /// A mismatch found in an answer: what was recorded, and what the client is told.
    struct Finding: Sendable {
        var kind: Kind
        var source: PlatformSource
        var clientPlatform: Platform
        /// The image's platforms, as a short list.
        var imagePlatforms: String
        /// `repository:reference has no image for ... (it has ...)`.
        var summary: String

        /// The `Warning` header's text.
        var warning: String { "299 archway \"\(summary)\"" }

        /// Whether refusing the pull is justified: a tag with nothing for a platform the client
        /// stated itself (never one learned, which may be a guess).
        var isRefusable: Bool {
            (kind == .singlePlatform || kind == .indexLacksPlatform) && source != .learned
        }
    }

    /// Records one mismatch: a JSON log line, a catalog row, a counter. Returns what was found.
    @discardableResult
    func record(
        kind: Kind, repository: RepositoryKey, reference: String, client: Client, clientPlatform: Platform, imagePlatforms: [Platform],
        rule: String?, source: PlatformSource
    ) async -> Finding {
        let images = Self.summary(imagePlatforms)
        await write(
            kind: kind, repository: repository, reference: reference, client: client, clientPlatform: clientPlatform, images: images,
            rule: rule, details: [:])
        return Finding(
            kind: kind, source: source, clientPlatform: clientPlatform, imagePlatforms: images,
            summary: "\(repository):\(reference) has no image for \(clientPlatform) (it has \(images))")
    }

    /// Records an image whose binary contradicts its config: the nodes of the `declared`
    /// platform are the ones it breaks, so that is the row's client platform.
    func recordBinaryMismatch(repository: RepositoryKey, reference: String, declared: Platform, binaries: Platform, report: BinaryReport)
        async
    {
        var details: Logger.Metadata = ["binary": "\(report.binary ?? "")", "elf": "\(report.elf ?? "")"]
        if !report.chain.isEmpty { details["chain"] = "\(report.chain.joined(separator: " => "))" }
        await write(
            kind: .binaryPlatform, repository: repository, reference: reference, client: .unknown, clientPlatform: declared,
            images: binaries.description, rule: nil, details: details)
    }

    private func write(
        kind: Kind, repository: RepositoryKey, reference: String, client: Client, clientPlatform: Platform, images: String,
        rule: String?, details: Logger.Metadata
    ) async {
        var metadata: Logger.Metadata = [
            "event": "arch_mismatch",
            "kind": "\(kind.rawValue)",
            "repository": "\(repository)",
            "reference": "\(reference)",
            "client_platform": "\(clientPlatform)",
            "image_platforms": "\(images)",
            "client": "\(client.address ?? "")",
            "user_agent": "\(client.userAgent ?? "")",
        ]
        if let rule { metadata["rule"] = "\(rule)" }
        metadata.merge(details) { $1 }
        logger.warning("arch mismatch", metadata: metadata)
        Counter(label: "archway_arch_mismatch_total", dimensions: [("client_arch", clientPlatform.architecture), ("kind", kind.rawValue)])
            .increment()
        let date = now()
        do {
            try await catalog.recordMismatch(
                MismatchRecord(
                    repository: repository.description, reference: reference, clientPlatform: clientPlatform.description,
                    imagePlatforms: images, kind: kind.rawValue, rule: rule, firstSeen: date, lastSeen: date, lastClient: client.address,
                    userAgent: client.userAgent
                )
            )
        } catch {
            logger.error("could not record a mismatch", metadata: ["error": "\(error)"])
        }
    }
}
