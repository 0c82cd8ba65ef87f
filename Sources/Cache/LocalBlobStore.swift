import Foundation
import NIOCore
import OCI
import Synchronization

/// The ``BlobStore`` on local disk: `blobs/sha256/<2 hex>/<64 hex>`, one file per digest,
/// shared by every repository and upstream.
///
/// Only verified content is ever in `blobs/`: small content (manifests) is checked before it is
/// written, large content arrives through a ``Fill`` that checks as it writes. The store runs at
/// most one fill per digest (single flight) and knows which digests are being filled or read,
/// so eviction never removes a file in use.
public final class LocalBlobStore: BlobStore {
    public let layout: StorageLayout
    /// Runs the downloads: they belong to the store, not to the request that started them.
    let downloads: DownloadRunner
    private let state = Mutex(State())

    struct State {
        /// Downloads running, and verified ones whose outcome is being recorded.
        var fills: [Digest: Fill] = [:]
        var readers: [Digest: Int] = [:]
        /// Failed downloads whose failure is being recorded (no longer in `fills`).
        var recordingFailures = 0
    }

    /// Opens the store, creating its folders and removing what an earlier run left in `tmp/`.
    /// A second process sharing the storage with a running server (`archway prefetch`) passes
    /// `ownsStorage: false`: the server's downloads in `tmp/` are not leftovers.
    public init(layout: StorageLayout, ownsStorage: Bool = true, downloads: DownloadRunner = .detached()) throws {
        self.layout = layout
        self.downloads = downloads
        try layout.prepare()
        guard ownsStorage else { return }
        let temporary = layout.temporaryDirectory
        for leftover in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] {
            try? FileManager.default.removeItem(at: temporary.appendingPathComponent(leftover))
        }
    }

    private func path(_ digest: Digest) -> String { layout.blobPath(digest).path }

    /// The length of stored content, nil when it is not stored.
    public func length(of digest: Digest) -> Int64? {
        var info = stat()
        guard stat(path(digest), &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    /// A reader of stored content from `range` (the whole content when nil); nil when not stored.
    public func reader(_ digest: Digest, range: ClosedRange<Int64>?) -> (any BlobReading)? {
        localReader(digest, range: range)
    }

    /// A reader of stored content, as its own type (it can lend its descriptor).
    public func localReader(_ digest: Digest, range: ClosedRange<Int64>? = nil) -> BlobReader? {
        guard let file = try? FileDescriptor.open(path(digest), flags: O_RDONLY) else { return nil }
        return BlobReader(
            file: file,
            fill: nil,
            lease: Lease(store: self, digest: digest),
            start: range?.lowerBound ?? 0,
            end: range.map { $0.upperBound + 1 }
        )
    }

    /// Stored content read whole, refusing more than `limit` bytes; nil when not stored.
    public func data(_ digest: Digest, limit: Int) async throws -> Data? {
        let path = path(digest)
        return try await BlockingIO.run {
            guard let file = try? FileDescriptor.open(path, flags: O_RDONLY) else { return nil }
            let size = try file.size()
            guard size <= Int64(limit) else { throw StorageError.lengthMismatch(expected: Int64(limit), actual: size) }
            let buffer = try file.read(count: Int(size), at: 0)
            return Data(buffer.readableBytesView)
        }
    }

    /// Stores small content whole, after checking it against its digest.
    public func store(_ bytes: Data, as digest: Digest) async throws {
        let actual = Digest.sha256(bytes)
        guard actual == digest else {
            throw StorageError.digestMismatch(expected: digest.description, actual: actual.description, bytes: Int64(bytes.count))
        }
        if length(of: digest) == Int64(bytes.count) { return }
        let (temporary, final) = (temporaryPath(digest), path(digest))
        try await BlockingIO.run {
            let file = try FileDescriptor.open(temporary, flags: O_RDWR | O_CREAT | O_EXCL)
            do {
                try file.write(ByteBuffer(bytes: bytes), at: 0)
                try file.synchronize()
                try Fill.moveIntoPlace(temporary, final)
            } catch {
                unlink(temporary)
                throw error
            }
        }
    }

    /// The fill of `digest`: the running one if there is one (single flight), else a new one
    /// that downloads with `open` on its own task and calls `finished` when done, with the
    /// moment (by `now`) the outcome was reached, before any reader learned it. Returns nil
    /// when the content is already stored, or when another fill runs and `join` is false (a
    /// caller not yet allowed to read what that fill downloads). `scope` says for whom a new fill
    /// downloads (``Fill/scope``).
    public func fill<Body: AsyncSequence & Sendable>(
        _ digest: Digest,
        join: Bool = true,
        scope: RepositoryKey? = nil,
        now: @escaping @Sendable () -> Date = Date.init,
        open: @escaping @Sendable () async throws -> (length: Int64?, body: Body),
        finished: @escaping @Sendable (Result<Int64, any Error>, Date) async -> Void
    ) throws -> (any BlobDownload)? where Body.Element == ByteBuffer {
        try fill(digest, join: join, scope: scope, now: now, open: open, beforePublishing: nil, finished: finished)
    }

    /// ``fill(_:join:scope:now:open:finished:)`` with a last step between the digest's match and
    /// the file's move into `blobs/`: `beforePublishing` gets the verified length and the file (still
    /// in `tmp/`, complete and verified), and its failure
    /// is the download's (a store that also writes elsewhere completes that write there, so
    /// nothing is visible anywhere before everything is).
    public func fill<Body: AsyncSequence & Sendable>(
        _ digest: Digest,
        join: Bool = true,
        scope: RepositoryKey? = nil,
        now: @escaping @Sendable () -> Date = Date.init,
        open: @escaping @Sendable () async throws -> (length: Int64?, body: Body),
        beforePublishing: (@Sendable (_ length: Int64, _ file: String) async throws -> Void)?,
        finished: @escaping @Sendable (Result<Int64, any Error>, Date) async -> Void
    ) throws -> (any BlobDownload)? where Body.Element == ByteBuffer {
        try state.withLock { state in
            if let running = state.fills[digest] { return join ? running : nil }
            if length(of: digest) != nil { return nil }
            let fill = try Fill(
                digest: digest, scope: scope, store: self, temporaryPath: temporaryPath(digest), finalPath: path(digest))
            // Handed to the runner under the lock, so a refusal (shutting down) leaves no trace.
            do {
                try downloads.start {
                    await self.download(fill, open: open, now: now, beforePublishing: beforePublishing, finished: finished)
                }
            } catch {
                unlink(fill.temporaryPath)
                throw error
            }
            state.fills[digest] = fill
            return fill
        }
    }

    /// Runs one download to its end, whether or not anyone still follows it, and records it.
    private func download<Body: AsyncSequence & Sendable>(
        _ fill: Fill,
        open: @escaping @Sendable () async throws -> (length: Int64?, body: Body),
        now: @escaping @Sendable () -> Date,
        beforePublishing: (@Sendable (_ length: Int64, _ file: String) async throws -> Void)?,
        finished: @escaping @Sendable (Result<Int64, any Error>, Date) async -> Void
    ) async where Body.Element == ByteBuffer {
        let (result, completedAt) = await fill.run(open, now: now, beforePublishing: beforePublishing)
        // A verified download stays the running one until its outcome is recorded: a client of
        // the same name arriving meanwhile follows it (the whole file) instead of finding content
        // the catalog does not link yet. A failed one goes at once, so the next client starts a
        // new download rather than joining a failure.
        let failed = if case .failure = result { true } else { false }
        if failed {
            state.withLock { state in
                state.fills.removeValue(forKey: fill.digest)
                state.recordingFailures += 1
            }
        }
        await finished(result, completedAt)
        state.withLock { state in
            if failed { state.recordingFailures -= 1 } else { state.fills.removeValue(forKey: fill.digest) }
        }
    }

    /// The running fill of `digest`, if there is one.
    public func runningFill(_ digest: Digest) -> (any BlobDownload)? {
        state.withLock { $0.fills[digest] }
    }

    /// A reader that follows a running fill from `range` (the whole content when nil).
    func reader(following fill: Fill, range: ClosedRange<Int64>?) -> BlobReader {
        BlobReader(
            file: fill.file,
            fill: fill,
            lease: Lease(store: self, digest: fill.digest),
            start: range?.lowerBound ?? 0,
            end: range.map { $0.upperBound + 1 }
        )
    }

    /// Removes stored content unless it is being filled or read. Returns whether it is gone.
    @discardableResult
    public func remove(_ digest: Digest) -> Bool {
        state.withLock { state in
            guard state.fills[digest] == nil, state.readers[digest, default: 0] == 0 else { return false }
            return unlink(path(digest)) == 0 || errno == ENOENT
        }
    }

    /// Whether a fill or a reader holds the digest.
    public func isBusy(_ digest: Digest) -> Bool {
        state.withLock { $0.fills[digest] != nil || $0.readers[digest, default: 0] > 0 }
    }

    /// How many downloads are running or still recording their outcome.
    public var fillsInFlight: Int { state.withLock { $0.fills.count + $0.recordingFailures } }

    public func downloadsInProgress() -> [DownloadProgress] {
        let fills = state.withLock { Array($0.fills.values) }
        return fills.map(\.progress).sorted { $0.startedAt < $1.startedAt }
    }

    /// How many readers follow running downloads.
    public var followers: Int {
        state.withLock { state in state.fills.keys.reduce(0) { $0 + state.readers[$1, default: 0] } }
    }

    /// Every digest with a file in `blobs/` (for reconciling with the catalog after a crash). The
    /// walk reads every folder of the store: on the blocking pool, not on a thread that serves.
    public func storedDigests() async throws -> Set<Digest> {
        let root = layout.root.appendingPathComponent("blobs/sha256")
        return try await BlockingIO.run {
            var digests: Set<Digest> = []
            let fileManager = FileManager.default
            for prefix in (try? fileManager.contentsOfDirectory(atPath: root.path)) ?? [] {
                for name in (try? fileManager.contentsOfDirectory(atPath: root.appendingPathComponent(prefix).path)) ?? [] {
                    if let digest = Digest("sha256:" + name), digest.encoded.hasPrefix(prefix) { digests.insert(digest) }
                }
            }
            return digests
        }
    }

    /// Whether the storage folder takes a write (a probe file in `tmp/`, on the blocking pool).
    public func problems() async -> [String] {
        let probe = layout.temporaryDirectory.appendingPathComponent("ready-\(UInt64.random(in: 0...UInt64.max))")
        do {
            try await BlockingIO.run {
                try Data("ready".utf8).write(to: probe)
                try FileManager.default.removeItem(at: probe)
            }
            return []
        } catch {
            return ["storage \(layout.root.path) is not writable: \(error.localizedDescription)"]
        }
    }

    /// Content on this disk is always served from it.
    public func directURL(for digest: Digest) -> String? { nil }

    private func temporaryPath(_ digest: Digest) -> String {
        layout.temporaryDirectory.appendingPathComponent("\(digest.encoded).\(UInt64.random(in: 0...UInt64.max))").path
    }

    /// Marks a digest as being read for as long as the lease lives.
    final class Lease: Sendable {
        let store: LocalBlobStore
        let digest: Digest

        init(store: LocalBlobStore, digest: Digest) {
            self.store = store
            self.digest = digest
            store.state.withLock { $0.readers[digest, default: 0] += 1 }
        }

        deinit {
            store.state.withLock { state in
                state.readers[digest, default: 1] -= 1
                if state.readers[digest] == 0 { state.readers[digest] = nil }
            }
        }
    }
}
