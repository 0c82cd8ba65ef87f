import Cache
import Foundation
import Logging
import ServiceLifecycle

/// The cache's housekeeping, as a service: at start-up it reconciles the catalog with the files
/// (a crash can leave either without the other), then every `interval` it writes the noted access
/// times and evicts down to the size limit. On shutdown it writes the last access times.
struct CacheMaintenance: Service {
    let evictor: Evictor
    let interval: Duration
    let logger: Logger

    func run() async throws {
        do {
            let (adopted, forgotten) = try await evictor.reconcile(at: Date())
            if adopted + forgotten > 0 {
                logger.notice("cache reconciled", metadata: ["adopted": "\(adopted)", "forgotten": "\(forgotten)"])
            }
        } catch {
            logger.error("cache reconciliation failed", metadata: ["error": "\(error)"])
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                // Shutting down cancels the sleep: no pass then, and no error to log.
                guard !Task.isCancelled else { break }
                await pass()
            }
        }
        try? await evictor.catalog.flushAccesses()
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
