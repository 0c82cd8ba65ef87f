import Foundation
import NIOCore
import OCI

/// Where verified content lives, by digest, shared by every repository and upstream.
///
/// ``LocalBlobStore`` (files on one disk) is today's implementation; an object store shared by
/// several replicas (S3) is shaped by the same contract:
/// - content is visible only once complete and verified: small content is checked before it is
///   written, large content arrives through a download (``BlobDownload``) that hashes as it
///   writes and publishes nothing until the digest matches;
/// - at most one download runs per digest (single flight); in a shared store the one running may
///   be another process's, and readers here follow it all the same;
/// - a reader never gets the last byte of a running download before it was verified;
/// - content being downloaded or read is never removed.
/// Whether a *name* may read a digest is the catalog's business, not the store's.
public protocol BlobStore: Sendable {
    /// The length of stored content; nil when it is not stored (a running download is not).
    func length(of digest: Digest) async -> Int64?
    /// A reader of stored content from `range` (the whole content when nil); nil when not stored.
    func reader(_ digest: Digest, range: ClosedRange<Int64>?) async -> (any BlobReading)?
    /// Stored content read whole, refusing more than `limit` bytes; nil when not stored.
    func data(_ digest: Digest, limit: Int) async throws -> Data?
    /// Stores small content whole, after checking it against its digest.
    func store(_ bytes: Data, as digest: Digest) async throws

    /// The download of `digest`: the running one if there is one (single flight), else a new
    /// one that fetches with `open` on its own task, owned by the store (it goes on when every
    /// client has left), and calls `finished` when done with the moment the outcome was reached.
    /// Nil when the content is already stored, or when another download runs and `join` is
    /// false. `scope` says for whom a new download fetches (``BlobDownload/scope``).
    func fill<Body: AsyncSequence & Sendable>(
        _ digest: Digest,
        join: Bool,
        scope: RepositoryKey?,
        now: @escaping @Sendable () -> Date,
        open: @escaping @Sendable () async throws -> (length: Int64?, body: Body),
        finished: @escaping @Sendable (Result<Int64, any Error>, Date) async -> Void
    ) async throws -> (any BlobDownload)? where Body.Element == ByteBuffer
    /// The running download of `digest`, if there is one.
    func runningFill(_ digest: Digest) async -> (any BlobDownload)?

    /// Removes stored content unless it is being downloaded or read. Returns whether it is gone.
    func remove(_ digest: Digest) async -> Bool
    /// Whether a download or a reader holds the digest.
    func isBusy(_ digest: Digest) async -> Bool
    /// Every stored digest, for reconciling with the catalog after a crash.
    func storedDigests() async throws -> Set<Digest>

    /// How many downloads are running or still recording their outcome.
    var fillsInFlight: Int { get }
    /// The downloads running now, with how far each has come.
    func downloadsInProgress() async -> [DownloadProgress]
    /// How many readers follow running downloads.
    var followers: Int { get }
    /// What keeps the store from taking content (not writable, not reachable); empty when fine.
    func problems() async -> [String]
    /// Where a client may fetch stored content itself (a presigned URL of an object store), for
    /// a server that redirects instead of sending it; nil when it is served here.
    func directURL(for digest: Digest) async -> String?
}

/// One download of one digest, followed by any number of readers.
public protocol BlobDownload: AnyObject, Sendable {
    var digest: Digest { get }
    /// For whom it downloads (a repository key): who may follow it without asking whether the
    /// content is theirs to read. The store itself ignores it.
    var scope: RepositoryKey? { get }
    /// The upstream's announced length, once it answered; throws when it failed before.
    func length() async throws -> Int64?
    /// Waits for the download to end; returns its length or throws its failure.
    func result() async throws -> Int64
    /// The download ended and its content was verified and stored.
    var isVerified: Bool { get }
    /// A reader that follows the download from `range` (the whole content when nil).
    func reader(range: ClosedRange<Int64>?) -> any BlobReading
}

/// Reads stored content, or content still downloading, from one offset to an end, in chunks.
/// While it lives, the content is not evicted.
public protocol BlobReading: AnyObject, Sendable {
    /// The first byte it reads.
    var start: Int64 { get }
    /// The content was stored whole when the reader was made (no download to follow).
    var isStored: Bool { get }
    /// The next chunk of at most `limit` bytes, nil at the end; throws when the download failed.
    func next(upTo limit: Int) async throws -> ByteBuffer?
    /// How far the content may be sent: its length once stored, else what the download has
    /// written and may be served. Waits until that is past `offset`; throws when it failed.
    func readable(beyond offset: Int64) async throws -> Int64
    /// A duplicate of an open file descriptor of the content, for a server that lets the kernel
    /// send it (`sendfile`); the caller closes it. Nil when the content is not a local file.
    func duplicateDescriptor() -> Int32?
}

extension BlobReading {
    /// The next chunk of the store's usual size, nil at the end.
    public func next() async throws -> ByteBuffer? {
        try await next(upTo: BlobReader.chunkSize)
    }
}

/// How far a running download has come: what an operator's page draws as a bar.
public struct DownloadProgress: Sendable, Hashable, Codable {
    public var digest: Digest
    /// For whom it downloads (a repository key).
    public var repository: String?
    /// The upstream's announced length, once it answered.
    public var expected: Int64?
    public var written: Int64
    public var startedAt: Date

    public init(digest: Digest, repository: String?, expected: Int64?, written: Int64, startedAt: Date) {
        self.digest = digest
        self.repository = repository
        self.expected = expected
        self.written = written
        self.startedAt = startedAt
    }
}
