import Cache
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

    init(manifest: Manifest, cache: CacheStatus) {
        self.manifest = manifest
        self.cache = cache
    }
}

/// A blob answer: the whole blob, or the requested part of it.
public struct BlobAnswer: Sendable {
    /// The whole blob's length, when known (an upstream may not announce it).
    public var length: Int64?
    /// The part being served (a `206`), nil for the whole blob.
    public var range: ByteRange?
    public var cache: CacheStatus
    /// The stored file or the running download, from the first byte served; a server that can
    /// send the file without reading it uses this, and ``countSent(_:)`` counts what it sent.
    public var reader: BlobReader
    let sentBytes: Counter

    /// The bytes, read as they are taken and counted as sent to a client.
    public var body: ByteStream { body(chunkSize: BlobReader.chunkSize) }

    /// The bytes in chunks of at most `chunkSize`: what a response holds per step when the client
    /// reads slowly.
    public func body(chunkSize: Int) -> ByteStream {
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

/// A `Range` that starts past the end: `416` with `Content-Range: bytes */length`.
public struct RangeNotSatisfiable: Error, Hashable {
    public let length: Int64
}

/// The cache's counters (swift-metrics; exported at `/metrics` by the operations work).
struct CacheMetrics: Sendable {
    let manifestHits = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "manifest"), ("result", "hit")])
    let manifestMisses = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "manifest"), ("result", "miss")])
    let manifestStale = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "manifest"), ("result", "stale")])
    let blobHits = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "blob"), ("result", "hit")])
    let blobMisses = Counter(label: "archway_cache_requests_total", dimensions: [("kind", "blob"), ("result", "miss")])
    let upstreamBytes = Counter(label: "archway_upstream_bytes_total")
    let clientBytes = Counter(label: "archway_client_bytes_total")
    let fillFailures = Counter(label: "archway_fill_failures_total")

    func count(_ status: CacheStatus, manifest: Bool) {
        switch (status, manifest) {
        case (.hit, true): manifestHits.increment()
        case (.miss, true): manifestMisses.increment()
        case (.stale, _): manifestStale.increment()
        case (.hit, false): blobHits.increment()
        case (.miss, false): blobMisses.increment()
        }
    }
}
