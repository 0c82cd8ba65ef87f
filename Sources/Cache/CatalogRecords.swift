import Foundation
import GRDB
import OCI

/// A tag as asked. An upstream's answer depends on the `Accept` set, so that is part of the
/// key; a synthesized index depends on the rule that built it, so its fingerprint is.
public struct TagKey: Sendable, Hashable {
    public var upstream: String
    public var repository: String
    public var tag: String
    /// The accepted media types, sorted and joined: the same set always gives the same key.
    /// Empty for a synthesized index.
    public var accept: String
    /// The fingerprint of the rule that synthesized the answer; empty for an upstream's answer.
    public var rule: String

    /// The upstream's answer to a request with this `Accept` set.
    public init(upstream: String, repository: String, tag: String, accepting: [String]) {
        self.upstream = upstream
        self.repository = repository
        self.tag = tag
        self.accept = Set(accepting).sorted().joined(separator: ",")
        self.rule = ""
    }

    /// The index the rule with this fingerprint synthesized for the tag.
    public init(upstream: String, repository: String, tag: String, synthesizedBy ruleFingerprint: String) {
        self.upstream = upstream
        self.repository = repository
        self.tag = tag
        self.accept = ""
        self.rule = ruleFingerprint
    }

    /// Whether the answer is a synthesized index.
    public var isSynthesized: Bool { !rule.isEmpty }
}

/// The last answer for a tag and when the upstream last confirmed it.
public struct TagRecord: Sendable, Hashable {
    public var descriptor: Descriptor
    public var validatedAt: Date

    /// The columns `init(row:)` reads, for a query to add its `WHERE` to.
    static let selection = """
        SELECT tag.digest, tag.validated_at, content.media_type, content.size FROM tag
        JOIN content ON content.digest = tag.digest
        """

    public init(descriptor: Descriptor, validatedAt: Date) {
        self.descriptor = descriptor
        self.validatedAt = validatedAt
    }

    init?(row: Row) {
        guard let digest = Digest(row[0] as String) else { return nil }
        descriptor = Descriptor(mediaType: MediaType(rawValue: row[2] ?? ""), digest: digest, size: row[3])
        validatedAt = Date(timeIntervalSince1970: row[1])
    }
}

public enum ContentKind: String, Sendable, Hashable {
    case manifest
    case blob
}

/// A stored digest as the catalog knows it.
public struct ContentRecord: Sendable, Hashable {
    public var digest: Digest
    public var kind: ContentKind
    public var mediaType: MediaType?
    public var size: Int64
    public var lastAccess: Date

    public init(digest: Digest, kind: ContentKind, mediaType: MediaType?, size: Int64, lastAccess: Date) {
        self.digest = digest
        self.kind = kind
        self.mediaType = mediaType
        self.size = size
        self.lastAccess = lastAccess
    }

    init?(row: Row) {
        guard let digest = Digest(row[0] as String), let kind = ContentKind(rawValue: row[1]) else { return nil }
        self.digest = digest
        self.kind = kind
        self.mediaType = (row[2] as String?).map(MediaType.init(rawValue:))
        self.size = row[3]
        self.lastAccess = Date(timeIntervalSince1970: row[4])
    }
}

/// A repository with cached tags.
public struct RepositorySummary: Sendable, Hashable, Codable {
    public var upstream: String
    public var repository: String
    /// Distinct tags cached (synthesized ones included).
    public var tags: Int
    /// When one of its tags was last confirmed upstream.
    public var lastValidated: Date

    public init(upstream: String, repository: String, tags: Int, lastValidated: Date) {
        self.upstream = upstream
        self.repository = repository
        self.tags = tags
        self.lastValidated = lastValidated
    }
}

/// What the scan of an image's binaries found, kept per image manifest digest: the platform its
/// config states and the scanner's report (JSON; the catalog does not read it).
public struct BinaryRecord: Sendable, Hashable {
    public var image: Digest
    public var platform: String
    public var report: String
    public var scannedAt: Date

    public init(image: Digest, platform: String, report: String, scannedAt: Date) {
        self.image = image
        self.platform = platform
        self.report = report
        self.scannedAt = scannedAt
    }
}

/// A source of content linked to a name, and whether that source is known to have it.
public struct LinkedSource: Sendable, Hashable {
    public var origin: RepositoryKey
    /// The content was fetched from the source, or the source confirmed it has it.
    public var isConfirmed: Bool

    public init(origin: RepositoryKey, isConfirmed: Bool) {
        self.origin = origin
        self.isConfirmed = isConfirmed
    }
}
