import Cache
import CoreMetrics
import Foundation
import Logging
import NIOCore
import OCI
import RegistryClient
import Synchronization

/// Blobs: stored ones from disk whichever name asks (when the name may read them), a miss
/// through the one download of its digest, streamed to every client as it arrives.
struct BlobService: Sendable {
    let store: any BlobStore
    let catalog: any Catalog
    let access: ContentAccess
    let evictor: Evictor
    let metrics: CacheMetrics
    let offline: Bool
    let now: @Sendable () -> Date
    let logger: Logger
    /// Told of every blob this service stored, after its catalog row.
    var stored: @Sendable (Digest) -> Void = { _ in }

    /// A blob of `route`, or the part of it a `Range` header asks for.
    func blob(_ route: UpstreamRouter.Route, _ digest: Digest, rangeHeader: String?) async throws -> BlobAnswer {
        var known: Admission?
        while true {
            // A download this name started is joined at once: it fetches from this name's own
            // sources, so the clients that arrive while it runs (a whole node pool pulling one
            // image) get their first bytes without a catalog query or a HEAD.
            if let running = await store.runningFill(digest), running.scope == route.key {
                return try await follow(running, route: route, rangeHeader: rangeHeader)
            }
            var admission: Admission
            if let known {
                admission = known
            } else {
                admission = try await access.admission(digest, under: route)
            }
            // The stored length, asked once per pass (with an object store, asking is a request).
            var stored: Int64?
            var storedAsked = false
            if !admission.isConfirmed {
                // This name's own download may have started while the catalog was read.
                let running = await store.runningFill(digest)
                if let running, running.scope == route.key {
                    return try await follow(running, route: route, rangeHeader: rangeHeader)
                }
                // A verified download stays running until it is recorded, so stored content
                // found here is recorded already.
                var present = running != nil
                if !present {
                    (stored, storedAsked) = (await store.length(of: digest), true)
                    present = stored != nil
                }
                if present {
                    // Stored or downloading for another name: served here only once this name's
                    // sources are known to have it. Read again first: this name's own download may
                    // have been recorded since the first read (then no HEAD is needed).
                    admission = try await access.admission(digest, under: route)
                    admission = try await access.confirmed(digest, admission, under: route, what: .blob)
                }
            }
            known = admission
            if !storedAsked { stored = await store.length(of: digest) }
            if let length = stored {
                let range = try Self.range(rangeHeader, length: length)
                if let reader = await store.reader(digest, range: range.map { $0.lowerBound...$0.upperBound }) {
                    catalog.noteAccess(digest, at: now())
                    metrics.count(.hit, manifest: false)
                    return BlobAnswer(
                        length: length, range: range, cache: .hit, reader: reader, sentBytes: metrics.clientBytes)
                }
            }
            if offline { throw offlineMiss("blob \(digest)") }
            if admission.isConfirmed, let running = await store.runningFill(digest) {
                return try await follow(running, route: route, rangeHeader: rangeHeader)
            }
            // Unconfirmed, the download is this name's own: it never joins another name's.
            guard let started = try await startFill(digest, for: route, sources: admission.sources, join: admission.isConfirmed) else {
                continue  // it just completed, or another download started
            }
            return try await follow(started, route: route, rangeHeader: rangeHeader)
        }
    }

    /// For another replica: this replica's running download of `digest`, from its first byte
    /// (never the last before it is verified), or the content once stored; nil when neither.
    func peerDownload(_ digest: Digest) async throws -> BlobAnswer? {
        if let running = await store.runningFill(digest) {
            let length = try await running.length()
            return BlobAnswer(length: length, range: nil, cache: .miss, reader: running.reader(range: nil), sentBytes: metrics.clientBytes)
        }
        guard let length = await store.length(of: digest), let reader = await store.reader(digest, range: nil) else { return nil }
        return BlobAnswer(length: length, range: nil, cache: .hit, reader: reader, sentBytes: metrics.clientBytes)
    }

    /// Where a client may fetch a stored blob itself (a presigned URL of the object store),
    /// when the store offers one and this name may read the blob; nil: it is served here. The
    /// access check is the one a served blob gets: the store's URL is never a way around it.
    func directURL(_ route: UpstreamRouter.Route, _ digest: Digest) async throws -> String? {
        guard let url = await store.directURL(for: digest) else { return nil }
        let admission = try await access.admission(digest, under: route)
        if !admission.isConfirmed { _ = try await access.confirmed(digest, admission, under: route, what: .blob) }
        catalog.noteAccess(digest, at: now())
        metrics.count(.hit, manifest: false)
        return url
    }

    /// A blob answer that reads a running download from the part `rangeHeader` asks for.
    private func follow(_ fill: any BlobDownload, route: UpstreamRouter.Route, rangeHeader: String?) async throws -> BlobAnswer {
        let length: Int64?
        do {
            length = try await fill.length()
        } catch let error as UpstreamError {
            throw error.registryError(for: .blob, route: route, logger: logger)
        } catch let error as TransportError {
            throw UpstreamError.transport(error).registryError(for: .blob, route: route, logger: logger)
        } catch let error as StorageError {
            logger.error("the store cannot take a blob", metadata: ["digest": "\(fill.digest)", "error": "\(error)"])
            throw RegistryError(.unavailable, "the cache cannot store \(fill.digest) now; the server's log has the details")
        }
        let range = try length.flatMap { try Self.range(rangeHeader, length: $0) }
        let reader = fill.reader(range: range.map { $0.lowerBound...$0.upperBound })
        // A download already verified (its outcome still being recorded) is stored content.
        let cache: CacheStatus = fill.isVerified ? .hit : .miss
        if cache == .hit { catalog.noteAccess(fill.digest, at: now()) }
        metrics.count(cache, manifest: false)
        return BlobAnswer(length: length, range: range, cache: cache, reader: reader, sentBytes: metrics.clientBytes)
    }

    /// Starts the download of a blob for `route` from the first of `sources` that has it, or
    /// joins the one running when `join`. Nil when it is already stored, or another download
    /// runs and `join` is false.
    private func startFill(_ digest: Digest, for route: UpstreamRouter.Route, sources: [UpstreamRouter.Route], join: Bool) async throws
        -> (any BlobDownload)?
    {
        let key = sources[0].key
        let (catalog, evictor, logger, metrics, now, access, stored) = (catalog, evictor, logger, metrics, now, access, stored)
        let name = route.key
        // The source that answered: the content is known to be there once it is verified.
        let answered = Mutex<UpstreamRouter.Route>(sources[0])
        do {
            return try await store.fill(
                digest,
                join: join,
                scope: route.key,
                now: now,
                open: {
                    var notFound: (any Error)?
                    for source in sources {
                        do {
                            let response = try await source.upstream.blob(source.repository, digest)
                            answered.withLock { $0 = source }
                            return (response.contentLength, response.body)
                        } catch let error as UpstreamError {
                            guard case .status(404, _, _) = error else { throw error }
                            notFound = error
                        }
                    }
                    throw notFound ?? UpstreamError.status(404, errors: [], retryAfter: nil)
                },
                finished: { result, completedAt in
                    switch result {
                    case .success(let size):
                        metrics.upstreamBytes.increment(by: size)
                        do {
                            // Its use is the download's end, not this later catalog write: a hit
                            // on other content in between is the more recent use.
                            let source = answered.withLock { $0 }
                            try await catalog.recordBlob(digest, size: size, from: source.key, at: completedAt)
                            access.remember(digest, under: name, confirmedAt: source.key)
                            stored(digest)
                            try await evictor.evictIfNeeded()
                        } catch {
                            logger.error("catalog write failed", metadata: ["digest": "\(digest)", "error": "\(error)"])
                        }
                    case .failure(let error):
                        metrics.fillFailures.increment()
                        logger.warning(
                            "blob download failed", metadata: ["repository": "\(key)", "digest": "\(digest)", "error": "\(error)"])
                    }
                }
            )
        } catch {
            logger.error("cannot start a blob download", metadata: ["digest": "\(digest)", "error": "\(error)"])
            throw RegistryError(.unavailable, "the cache cannot store \(digest) now; the server's log has the details")
        }
    }

    /// The part of a `length`-byte blob a `Range` header asks for; nil for the whole blob
    /// (no header, or one RFC 9110 lets a server ignore).
    static func range(_ header: String?, length: Int64) throws -> ByteRange? {
        switch ByteRange.parse(header, length: length) {
        case .none: return nil
        case .satisfiable(let range): return range
        case .unsatisfiable: throw RangeNotSatisfiable(length: length)
        }
    }
}
