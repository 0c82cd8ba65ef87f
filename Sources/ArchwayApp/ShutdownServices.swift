import Cache
import Logging
import Proxy
import ServiceLifecycle
import SharedState

/// Says when a graceful shutdown begins (the log, and systemd's `STOPPING=1`), before the server
/// stops accepting and waits for the responses in flight.
public struct ShutdownNotice: Service {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        SystemdNotifier.notify("STOPPING=1")
        logger.notice("shutting down: finishing the responses and downloads in flight")
    }
}

/// Owns the store's downloads: they run as child tasks of this service (``DownloadRunner``).
/// On shutdown, after the server has finished the responses in flight, it starts no new
/// download and lets the running ones finish for up to `bound` (a blob a client was receiving,
/// or that no one waits for any more, is completed and cached rather than thrown away), then
/// cancels what is left, which removes its partial file.
struct DownloadService: Service {
    let runner: DownloadRunner
    let registry: PullThroughRegistry
    let bound: Duration
    let logger: Logger

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await runner.run() }
            group.addTask {
                try? await gracefulShutdown()
                runner.close()
                let running = registry.fillsInFlight
                if running > 0 { logger.notice("waiting for downloads to finish", metadata: ["fills": "\(running)"]) }
                try? await Task.sleep(for: bound)
            }
            // Whichever comes first: the last download ended (after the close), or the bound.
            await group.next()
            group.cancelAll()
        }
        if registry.fillsInFlight > 0 {
            logger.warning("shutting down with downloads unfinished", metadata: ["fills": "\(registry.fillsInFlight)"])
        }
    }
}

/// Runs the shared catalog's connections and its listener for other replicas' changes, until
/// the graceful shutdown has let every other service write what it had to.
struct SharedCatalogService: Service {
    let catalog: PostgresCatalog

    func run() async throws {
        await cancelWhenGracefulShutdown { await catalog.run() }
    }
}
