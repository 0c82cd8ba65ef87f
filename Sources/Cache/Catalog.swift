import Foundation
import OCI

/// What Archway knows about its cache: which tag answered which digest for which `Accept` set,
/// what content is stored (kind, media type, size, last access), which names may serve each
/// digest and where it is fetched for each (links, and presence at a source), and the
/// architecture mismatches seen.
///
/// ``SQLiteCatalog`` (one process, SQLite in WAL mode) is today's implementation; a shared one
/// (PostgreSQL, several replicas) is shaped by the same contract:
/// - every call is `async` and may fail (a database is a network away);
/// - a content row is written only after its bytes are complete and verified in the blob store:
///   the row, not the store's listing, decides what is served, so an insert that finds the row
///   already there (another replica) is success;
/// - access times are noted in memory (``noteAccess(_:at:)``) and written in batches, so a hit
///   costs no write;
/// - answers kept in memory for speed (recent tags) are written through, and a shared
///   implementation must invalidate them across replicas within the tag TTL.
public protocol Catalog: Sendable {
    /// Whether other replicas write to it too (a tag may move under this replica at any time).
    var isShared: Bool { get }

    // MARK: Tags

    /// The last answer for a tag asked with this `Accept` set.
    func tag(_ key: TagKey) async throws -> TagRecord?
    /// Every cached answer for a tag, whatever `Accept` set asked it, most recently confirmed first.
    func tagAnswers(upstream: String, repository: String, tag: String) async throws -> [TagRecord]
    /// Records a stored manifest, where it came from, and the tag that answered it (if any).
    func recordManifest(_ descriptor: Descriptor, from source: RepositoryKey, tag: TagKey?, at date: Date) async throws
    /// The upstream confirmed the tag still names the same digest.
    func markValidated(_ key: TagKey, at date: Date) async throws
    /// Forgets a tag (the upstream no longer has it).
    func removeTag(_ key: TagKey) async throws

    // MARK: Content

    /// Records a stored blob and where it came from (linked to that name, present there).
    func recordBlob(_ digest: Digest, size: Int64, from source: RepositoryKey, at date: Date) async throws
    /// Records content found in the store that the catalog did not know (a crash between the
    /// store's write and the catalog's).
    func adopt(_ digest: Digest, size: Int64, at date: Date) async throws
    func content(_ digest: Digest) async throws -> ContentRecord?
    /// Every digest the catalog knows.
    func allDigests() async throws -> Set<Digest>
    /// The bytes of all stored content.
    func totalSize() async throws -> Int64
    /// Content, least recently used first.
    func leastRecentlyUsed(limit: Int) async throws -> [ContentRecord]
    /// Forgets content and the tags that named it (its links are kept).
    func remove(_ digest: Digest) async throws

    // MARK: Links: who may read what

    /// Where content served under `name` is fetched, first recorded first, each with whether the
    /// source is known to have it. Empty when the digest was never linked to the name.
    func sources(_ digest: Digest, under name: RepositoryKey) async throws -> [LinkedSource]
    /// Records that `origin` has the content (it answered a HEAD for it).
    func confirm(_ digest: Digest, at origin: RepositoryKey) async throws
    /// Links content to a name, to be fetched from `source` (the name itself when nil).
    func link(_ digests: [Digest], under name: RepositoryKey, source: RepositoryKey?) async throws

    // MARK: Access times

    /// Notes that content was served; written with the next ``flushAccesses()``.
    func noteAccess(_ digest: Digest, at date: Date)
    /// Writes the noted access times.
    func flushAccesses() async throws

    // MARK: Mismatches

    /// Adds one mismatch event to its (repository, reference, client platform) row.
    func recordMismatch(_ event: MismatchRecord) async throws
    /// The mismatch rows seen since `since` (all when nil), most recent first.
    func mismatches(since: Date?) async throws -> [MismatchRecord]

    // MARK: Repositories

    /// Repositories with cached tags, most recently confirmed first: `limit` of them from
    /// `offset`, and how many there are.
    func repositories(offset: Int, limit: Int) async throws -> (total: Int, page: [RepositorySummary])

    // MARK: Binaries

    /// Keeps what the scan of an image's binaries found (replacing an earlier scan's).
    func recordBinaries(_ record: BinaryRecord) async throws
    /// What the scan of an image (by its manifest's digest) found; nil when it was not scanned.
    func binaries(of image: Digest) async throws -> BinaryRecord?
}

extension Catalog {
    /// Links content to a name, fetched from that name.
    public func link(_ digests: [Digest], under name: RepositoryKey) async throws {
        try await link(digests, under: name, source: nil)
    }
}

extension Catalog {
    public var isShared: Bool { false }
}
