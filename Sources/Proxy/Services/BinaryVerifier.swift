import Cache
import CoreMetrics
import Foundation
import LayerInspection
import Logging
import NIOCore
import NIOPosix
import OCI
import Synchronization

/// Finds out what images really are: once every layer of an image that was served is stored,
/// its layers are read in the background (one image at a time, on a thread of its own at a low
/// priority, within ``ScanLimits``), its entrypoint is followed to the binary that runs, and the
/// ELF header of that binary says its architecture. The report is kept in the catalog per image
/// digest; an image whose binary contradicts its config's platform is a `binary-platform`
/// mismatch.
///
/// Nothing here is on a request's path: a served manifest only notes the image (a lock and a
/// set lookup), and a stored blob only crosses it off the images waiting for it.
public final class BinaryVerifier: Sendable {
    /// An image waiting for its scan.
    struct Job: Sendable {
        var image: Digest
        var manifest: ImageManifest
        var route: UpstreamRouter.Route
        /// How it was asked for (a tag, else its digest), for the mismatch report.
        var reference: String
        var notedAt: ContinuousClock.Instant
        /// The blobs not stored yet; nil until the worker looks.
        var missing: Set<Digest>?
        /// When the worker last looked at the store for them.
        var checkedAt: ContinuousClock.Instant?
    }

    private struct State {
        var jobs: [Digest: Job] = [:]
        /// Images scanned (or found scanned in the catalog): not looked at again.
        var known: Set<Digest> = []
    }

    /// Images waiting at most; beyond, the oldest are forgotten (a later pull notes them again).
    static let waitingLimit = 256
    /// Images remembered as scanned at most, before the memory starts over.
    static let knownLimit = 100_000
    /// How long an image waits for its layers.
    static let patience = Duration.seconds(3600)
    /// A waiting image served again has its blobs looked for again (another process may have
    /// stored them), at most this often: a flood of pulls of it costs no more than one look.
    static let recheck = Duration.seconds(10)

    private let state = Mutex(State())
    private let work: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    let store: any BlobStore
    let catalog: any Catalog
    let auditor: PlatformAuditor
    public let limits: ScanLimits
    let logger: Logger
    let now: @Sendable () -> Date

    init(
        store: any BlobStore, catalog: any Catalog, auditor: PlatformAuditor, limits: ScanLimits, logger: Logger,
        now: @escaping @Sendable () -> Date
    ) {
        (work, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.store = store
        self.catalog = catalog
        self.auditor = auditor
        self.limits = limits
        self.logger = logger
        self.now = now
    }

    // MARK: - What the read path tells it

    /// Whether an image served is worth noting: not scanned yet, and not waiting with its blobs
    /// looked for within ``recheck`` (a warm manifest's hot path pays one lookup, no decoding).
    func wants(_ image: Digest) -> Bool {
        state.withLock { state in
            if state.known.contains(image) { return false }
            guard let waiting = state.jobs[image] else { return true }
            return waiting.checkedAt.map { $0.duration(to: .now) > Self.recheck } ?? false
        }
    }

    /// An image manifest was served: scan it once its blobs are stored. Noting an image already
    /// waiting makes the worker look at its blobs again (another process may have stored them),
    /// at most every ``recheck``.
    func noteServed(_ image: Digest, manifest: ImageManifest, route: UpstreamRouter.Route, reference: String) {
        // Only container images run: an artifact (a chart, a signature) has a config of its own type.
        guard manifest.config.mediaType == .ociConfig || manifest.config.mediaType == .dockerConfig else { return }
        let noted = state.withLock { state -> Bool in
            guard !state.known.contains(image) else { return false }
            if let waiting = state.jobs[image] {
                guard let checked = waiting.checkedAt, checked.duration(to: .now) > Self.recheck else { return false }
                state.jobs[image]?.missing = nil
                state.jobs[image]?.checkedAt = nil
                return true
            }
            if state.jobs.count >= Self.waitingLimit, let oldest = state.jobs.values.min(by: { $0.notedAt < $1.notedAt }) {
                state.jobs[oldest.image] = nil
            }
            state.jobs[image] = Job(image: image, manifest: manifest, route: route, reference: reference, notedAt: .now)
            return true
        }
        if noted { signal.yield() }
    }

    /// A blob was stored: the images waiting for it may be complete.
    func blobStored(_ digest: Digest) {
        let ready = state.withLock { state in
            var ready = false
            for (image, job) in state.jobs where job.missing?.contains(digest) == true {
                state.jobs[image]?.missing?.remove(digest)
                ready = ready || state.jobs[image]?.missing?.isEmpty == true
            }
            return ready
        }
        if ready { signal.yield() }
    }

    /// Images waiting for their scan.
    public var waiting: Int { state.withLock { $0.jobs.count } }

    // MARK: - The worker

    /// Scans the images whose blobs are all stored, one at a time, until cancelled.
    public func run() async {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        // The scan's thread yields to everything else on the machine.
        _ = try? await pool.runIfActive { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10) }
        for await _ in work {
            await drain { body in try await pool.runIfActive(body) }
        }
        try? await pool.shutdownGracefully()
    }

    /// Looks at every waiting image: forgets those scanned or waiting too long, finds the blobs
    /// of new ones, scans the complete ones.
    private func drain(offload: @escaping Offload) async {
        var scanned = true
        while scanned, !Task.isCancelled {
            scanned = false
            let jobs = state.withLock { Array($0.jobs.values) }.sorted { $0.notedAt < $1.notedAt }
            for job in jobs where !Task.isCancelled {
                if job.notedAt.duration(to: .now) > Self.patience {
                    forget(job.image, scanned: false)
                    continue
                }
                var missing = job.missing
                if missing == nil {
                    if job.checkedAt == nil, (try? await catalog.binaries(of: job.image)) != nil {
                        forget(job.image, scanned: true)
                        continue
                    }
                    var absent: Set<Digest> = []
                    for blob in [job.manifest.config] + job.manifest.layers where await store.length(of: blob.digest) == nil {
                        absent.insert(blob.digest)
                    }
                    missing = absent
                    state.withLock { state in
                        state.jobs[job.image]?.missing = absent
                        state.jobs[job.image]?.checkedAt = .now
                    }
                }
                guard missing?.isEmpty == true else { continue }
                _ = await verify(job.image, manifest: job.manifest, route: job.route, reference: job.reference, offload: offload) {
                    try await self.storedReader($0)
                }
                forget(job.image, scanned: true)
                scanned = true
            }
        }
    }

    private func forget(_ image: Digest, scanned: Bool) {
        state.withLock { state in
            state.jobs[image] = nil
            guard scanned else { return }
            if state.known.count >= Self.knownLimit { state.known.removeAll() }
            state.known.insert(image)
        }
    }

    private func storedReader(_ digest: Digest) async throws -> any BlobReading {
        guard let reader = await store.reader(digest, range: nil) else {
            throw ReadFailure(description: "\(digest) is no longer stored")
        }
        return reader
    }

    // MARK: - A scan

    /// Runs a step of a scan somewhere (the worker's thread, or inline).
    typealias Offload = @Sendable (@escaping @Sendable () throws -> Void) async throws -> Void

    /// Scans one image, reading its blobs with `read`, records the report and a mismatch when
    /// the binary contradicts the config. Nil when the image cannot be read (its config is not a
    /// config, a blob vanished): nothing is recorded then, and the worker does not try it again
    /// before a restart (`archway inspect` does).
    func verify(
        _ image: Digest, manifest: ImageManifest, route: UpstreamRouter.Route, reference: String, offload: @escaping Offload,
        read: (Digest) async throws -> any BlobReading
    ) async -> (platform: Platform, report: BinaryReport)? {
        let started = ContinuousClock.now
        let scan = ImageScan(limits: limits)
        // The scan's own CPU time, summed over its steps on whichever thread ran them.
        let cpu = Mutex<Duration>(.zero)
        let offload: Offload = { body in
            try await offload {
                let before = Self.threadCPUTime()
                defer { cpu.withLock { $0 += Self.threadCPUTime() - before } }
                try body()
            }
        }
        let platform: Platform
        let execution: ImageExecution
        do {
            let config = try await collect(read(manifest.config.digest), limit: 4 << 20)
            platform = try ImageConfig.decode(config).platform.normalized()
            execution = ImageExecution.decode(config) ?? ImageExecution()
        } catch {
            logger.notice("cannot read an image's config", metadata: ["image": "\(image)", "error": "\(error)"])
            return nil
        }
        var report: BinaryReport
        do {
            for (position, layer) in manifest.layers.enumerated() {
                scan.startLayer(compressedSize: layer.size)
                let reader = try await read(layer.digest)
                do {
                    while let chunk = try await reader.next(upTo: 1 << 20) {
                        try await offload { try chunk.withUnsafeReadableBytes { try scan.feed($0) } }
                    }
                    try await offload { try scan.finishLayer() }
                } catch let stop as ScanStop {
                    throw LayerStop(position: position, digest: layer.digest, stop: stop)
                }
            }
            // Following the entrypoint and counting the bin folders walks every path of the
            // image: on the scan's thread too, not on the pool that answers requests.
            let made = Mutex<BinaryReport?>(nil)
            try await offload { made.withLock { $0 = scan.report(for: execution) } }
            report = made.withLock { $0 } ?? BinaryReport(outcome: .incomplete, detail: "the scan was not finished")
        } catch let stop as LayerStop {
            report = BinaryReport(outcome: .incomplete, detail: "layer \(stop.position + 1) (\(stop.digest)): \(stop.stop)")
        } catch {
            logger.notice("cannot read an image's layers", metadata: ["image": "\(image)", "error": "\(error)"])
            return nil
        }
        let bytes = scan.decompressedBytes
        let cpuTime = cpu.withLock { $0 }
        Counter(label: "archway_binary_scan_bytes_total").increment(by: Int(bytes))
        FloatingPointCounter(label: "archway_binary_scan_cpu_seconds_total").increment(by: cpuTime.totalSeconds)
        Counter(label: "archway_binary_scans_total", dimensions: [("outcome", report.outcome.rawValue)]).increment()
        logger.info(
            "scanned an image's binaries",
            metadata: [
                "image": "\(image)", "repository": "\(route.key)", "platform": "\(platform)", "outcome": "\(report.outcome.rawValue)",
                "binary": "\(report.binary ?? "")", "architecture": "\(report.architecture ?? "")", "bytes": "\(bytes)",
                "ms": "\(Int(started.duration(to: .now).totalSeconds * 1000))", "cpu_ms": "\(Int(cpuTime.totalSeconds * 1000))",
            ].merging(report.detail.map { ["detail": "\($0)"] } ?? [:]) { $1 }
        )
        do {
            let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
            try await catalog.recordBinaries(BinaryRecord(image: image, platform: platform.description, report: json, scannedAt: now()))
        } catch {
            logger.error("could not record a binary scan", metadata: ["image": "\(image)", "error": "\(error)"])
        }
        if report.contradicts(architecture: platform.architecture), let architecture = report.architecture {
            await auditor.recordBinaryMismatch(
                repository: route.key, reference: reference, declared: platform,
                binaries: Platform(os: platform.os, architecture: architecture), report: report)
        }
        return (platform, report)
    }

    /// The CPU time the calling thread has used.
    static func threadCPUTime() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    private struct ReadFailure: Error, CustomStringConvertible {
        var description: String
    }

    private struct LayerStop: Error {
        var position: Int
        var digest: Digest
        var stop: ScanStop
    }

    private func collect(_ reader: any BlobReading, limit: Int) async throws -> Data {
        var data = Data()
        while let chunk = try await reader.next(upTo: BlobReader.chunkSize) {
            guard data.count + chunk.readableBytes <= limit else { throw ReadFailure(description: "a config over \(limit) bytes") }
            data.append(contentsOf: chunk.readableBytesView)
        }
        return data
    }

    /// What the catalog says of an image's binaries; nil when it was not scanned.
    func recorded(_ image: Digest) async -> (platform: String, report: BinaryReport, scannedAt: Date)? {
        guard let record = try? await catalog.binaries(of: image),
            let report = try? JSONDecoder().decode(BinaryReport.self, from: Data(record.report.utf8))
        else { return nil }
        return (record.platform, report, record.scannedAt)
    }
}
