import Cache
import Foundation
import Logging
import ObjectStorage
import ServiceLifecycle

/// The cache's housekeeping, as a service: at start-up it reconciles the catalog with the files
/// (a crash can leave either without the other), then every `interval` it writes the noted access
/// times and evicts down to the size limit. On shutdown it writes the last access times.
struct CacheMaintenance: Service {
    let evictor: Evictor
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let tiered = evictor.store as? TieredBlobStore
        if let tiered {
            do {
                try await tiered.loadLocalTier()
                await tiered.trimLocalTier()
            } catch {
                logger.error("reading the local tier failed", metadata: ["error": "\(error)"])
            }
        }
        do {
            let (adopted, forgotten) = try await evictor.reconcile(at: Date())
            if adopted + forgotten > 0 {
                logger.notice("cache reconciled", metadata: ["adopted": "\(adopted)", "forgotten": "\(forgotten)"])
            }
        } catch {
            logger.error("cache reconciliation failed", metadata: ["error": "\(error)"])
        }
        await cancelWhenGracefulShutdown {
            var lastSweep: ContinuousClock.Instant?
            while !Task.isCancelled {
                if let tiered, lastSweep.map({ $0.duration(to: .now) > Self.sweepInterval }) ?? true {
                    lastSweep = .now
                    await sweep(tiered)
                }
                try? await Task.sleep(for: interval)
                // Shutting down cancels the sleep: no pass then, and no error to log.
                guard !Task.isCancelled else { break }
                await pass()
            }
        }
        try? await evictor.catalog.flushAccesses()
    }

    /// How often the bucket is swept, and how old an upload must be to count as abandoned: no
    /// download of a replica runs that long without finishing (or failing and aborting).
    static let sweepInterval: Duration = .seconds(3600)
    static let abandonedAfter: Duration = .seconds(24 * 3600)

    private func sweep(_ store: TieredBlobStore) async {
        do {
            let aborted = try await store.sweepAbandonedUploads(olderThan: Self.abandonedAfter)
            if aborted > 0 { logger.notice("abandoned uploads aborted", metadata: ["count": "\(aborted)"]) }
        } catch {
            logger.warning("sweeping abandoned uploads failed", metadata: ["error": "\(error)"])
        }
    }

    private func pass() async {
        do {
            let pass = try await evictor.evictIfNeeded()
            if !pass.removed.isEmpty {
                logger.info(
                    "evicted",
                    metadata: ["count": "\(pass.removed.count)", "bytes": "\(pass.freedBytes)", "size": "\(pass.sizeAfter)"]
                )
            }
        } catch is CancellationError {
            return
        } catch {
            logger.error("eviction failed", metadata: ["error": "\(error)"])
        }
    }
}
