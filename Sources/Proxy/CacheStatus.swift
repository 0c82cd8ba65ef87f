import Cache
import Foundation
import Metrics
import NIOCore
import OCI
import RegistryClient

/// Where an answer came from, as the `X-Cache` response header says it.
public enum CacheStatus: String, Sendable, Hashable {
    /// From the cache, without asking the upstream (or after it confirmed a tag).
    case hit = "HIT"
    /// From the upstream, now cached.
    case miss = "MISS"
    /// From the cache because the upstream failed: possibly out of date.
    case stale = "STALE"
}

/// A manifest answer.
public struct ManifestAnswer: Sendable {
    public var manifest: Manifest
    public var cache: CacheStatus
    /// A `Warning` header text when the answer does not fit the client's platform.
    public var warning: String?
    /// Until when the same question gets the same answer without asking anyone: a tag's
    /// validation plus the TTL, forever for a digest; nil for an answer that must not be
    /// repeated from memory (stale, or a fallback).
    var freshUntil: Date?

    init(manifest: Manifest, cache: CacheStatus, freshUntil: Date? = nil) {
        self.manifest = manifest
        self.cache = cache
        self.freshUntil = freshUntil
    }
}

/// A blob answer: the whole blob, or the requested part of it.
public struct BlobAnswer: Sendable {
    /// The whole blob's length, when known (an upstream may not announce it).
    public var length: Int64?
    /// The part being served (a `206`), nil for the whole blob.
    public var range: ByteRange?
    public var cache: CacheStatus
    /// The stored file or the running download, from the first byte served.
    let reader: any BlobReading
    let sentBytes: ByteCount

    init(length: Int64?, range: ByteRange?, cache: CacheStatus, reader: any BlobReading, sentBytes: ByteCount) {
        self.length = length
        self.range = range
        self.cache = cache
        self.reader = reader
        self.sentBytes = sentBytes
    }

    /// The bytes as a file, for a server that lets the kernel send it; ``countSent(_:)`` counts
    /// what it sent.
    public var file: BlobFile { BlobFile(reader: reader) }

    /// Chunks read from the store for ``body``.
    public static let chunkSize = 256 << 10

    /// The bytes, read as they are taken and counted as sent to a client.
    public var body: some AsyncSequence<ByteBuffer, any Error> & Sendable { body(chunkSize: Self.chunkSize) }

    /// The bytes in chunks of at most `chunkSize`: what a response holds per step when the client
    /// reads slowly.
    public func body(chunkSize: Int) -> some AsyncSequence<ByteBuffer, any Error> & Sendable {
        stream(chunkSize: chunkSize)
    }

    func stream(chunkSize: Int) -> ByteStream {
        let (reader, counter) = (reader, sentBytes)
        return ByteStream {
            {
                let chunk = try await reader.next(upTo: chunkSize)
                if let chunk { counter.increment(by: chunk.readableBytes) }
                return chunk
            }
        }
    }

    /// Counts bytes sent to a client without going through `body`.
    public func countSent(_ bytes: Int64) {
        sentBytes.increment(by: bytes)
    }

    /// The number of bytes in `body`, when known.
    public var contentLength: Int64? { range?.count ?? length }
}

/// A blob's bytes as a file: the stored one, or the one a running download is writing. While it
/// lives, eviction leaves the content alone.
public struct BlobFile: Sendable {
    let reader: any BlobReading

    /// The first byte to send.
    public var start: Int64 { reader.start }

    /// Whether the content was stored whole (no download to follow).
    public var isComplete: Bool { reader.isStored }

    /// A duplicate of the open descriptor; the caller owns and closes it. While a download runs,
    /// send only up to ``readable(beyond:)``.
    public func duplicateDescriptor() -> Int32? { reader.duplicateDescriptor() }

    /// How far the file may be sent: its length once stored, else what the download has written
    /// and may be served (never the last byte before the digest is verified). Waits until that
    /// is past `offset`; throws when the download failed.
    public func readable(beyond offset: Int64) async throws -> Int64 { try await reader.readable(beyond: offset) }
}

/// One page of a repository's tag list, as served.
public struct TagList: Sendable, Hashable, Encodable {
    public var name: String
    public var tags: [String]
    /// More tags follow this page (the answer gets a `Link: rel="next"`).
    public var hasMore: Bool

    enum CodingKeys: String, CodingKey {
        case name
        case tags
    }
}

/// A `Range` that starts past the end: `416` with `Content-Range: bytes */length`.
public struct RangeNotSatisfiable: Error, Hashable {
    public let length: Int64
}

/// Bytes counted twice: for `/metrics` and for the operator's page's history.
struct ByteCount: Sendable {
    let counter: Counter
    let record: @Sendable (Int64) -> Void

    func increment<Amount: BinaryInteger>(by amount: Amount) {
        counter.increment(by: amount)
        record(Int64(amount))
    }
}

/// The cache's counters (swift-metrics; exported at `/metrics` by the operations work), and the
/// minute-by-minute history the operator's page draws.
struct CacheMetrics: Sendable {
    let manifestHits = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "manifest"), ("result", "hit")])
    let manifestMisses = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "manifest"), ("result", "miss")])
    let manifestStale = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "manifest"), ("result", "stale")])
    let blobHits = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "blob"), ("result", "hit")])
    let blobMisses = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "blob"), ("result", "miss")])
    let upstreamBytes: ByteCount
    let clientBytes: ByteCount
    let fillFailures = Counter(label: "archway_fill_failures_total")
    let history: TrafficHistory

    init(history: TrafficHistory) {
        self.history = history
        upstreamBytes = ByteCount(counter: Counter(label: "archway_upstream_bytes_total")) { history.fetched($0) }
        clientBytes = ByteCount(counter: Counter(label: "archway_client_bytes_total")) { history.served($0) }
    }

    func count(_ status: CacheStatus, manifest: Bool) {
        history.count(status)
        switch (status, manifest) {
        case (.hit, true): manifestHits.increment()
        case (.miss, true): manifestMisses.increment()
        case (.stale, _): manifestStale.increment()
        case (.hit, false): blobHits.increment()
        case (.miss, false): blobMisses.increment()
        }
    }
}

/// The referrers of a manifest: an OCI image index of their descriptors.
public struct Referrers: Sendable {
    public var index: ImageIndex
    /// Whether only one `artifactType` was kept (`OCI-Filters-Applied: artifactType`).
    public var filtered: Bool
    public var cache: CacheStatus
}
