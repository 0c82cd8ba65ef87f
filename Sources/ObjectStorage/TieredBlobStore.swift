import Cache
import Foundation
import Logging
import NIOCore
import OCI
import RegistryClient
import Synchronization

/// The ``BlobStore`` of a replica on object storage: a bucket holds every blob
/// (`blobs/sha256/<64 hex>`), and this machine's disk (a ``LocalBlobStore``) keeps the hot
/// ones, served with sendfile as on a single node.
///
/// - A download streams into the local file and, in the same pass, into a multipart upload;
///   once the digest matched, the upload is completed and only then is the local file moved
///   into place: nothing partial is visible in either tier, and no catalog row is written
///   before both are complete. A failed download aborts its upload.
/// - Content in the bucket but not on this disk is brought into the local tier on its first
///   read, through a download from the bucket that checks the digest again: bytes from the
///   bucket are as untrusted as an upstream's.
/// - The local tier keeps to its own size (`storage.max-size`), least recently used first;
///   the bucket's size is the catalog's, evicted by the ``Evictor`` like a single store.
/// - Uploads older than a day that no download here owns are abandoned ones (a replica that
///   died mid-download): ``sweepAbandonedUploads(olderThan:)`` aborts them.
public final class TieredBlobStore: BlobStore {
    public let local: LocalBlobStore
    public let bucket: S3Client
    /// Bytes the local tier may hold; nil: no limit.
    public let localLimit: Int64?
    /// Content not on this disk is offered as a presigned URL of the bucket (``directURL(for:)``).
    public let redirects: Bool
    /// How long such a URL works: a client follows it at once.
    static let redirectLifetime = 600
    let partSize: Int
    /// Lengths of content known to be in the bucket (found or written here).
    private let inBucket = RecentlyUsed<Digest, Int64>(budget: 200_000)
    private let tier = Mutex(LocalTier())

    /// Local content and when it was last read, for keeping the local tier to its size.
    struct LocalTier {
        var entries: [Digest: (size: Int64, used: Date)] = [:]
        var size: Int64 = 0

        mutating func note(_ digest: Digest, size: Int64, at date: Date) {
            if let old = entries[digest] { self.size -= old.size }
            entries[digest] = (size, date)
            self.size += size
        }

        mutating func forget(_ digest: Digest) {
            if let old = entries.removeValue(forKey: digest) { size -= old.size }
        }
    }

    /// Replicas sharing the bucket, and how this one takes part: with it, one download per digest
    /// for the whole fleet.
    public struct Fleet: Sendable {
        public let coordinator: any FillCoordinator
        public let peers: PeerFills
        public let logger: Logger

        public init(coordinator: any FillCoordinator, peers: PeerFills, logger: Logger) {
            self.coordinator = coordinator
            self.peers = peers
            self.logger = logger
        }
    }

    public let fleet: Fleet?

    public init(
        local: LocalBlobStore, bucket: S3Client, localLimit: Int64?, redirects: Bool = false, fleet: Fleet? = nil,
        partSize: Int = 8 << 20
    ) {
        self.local = local
        self.bucket = bucket
        self.localLimit = localLimit
        self.redirects = redirects
        self.fleet = fleet
        self.partSize = partSize
    }

    /// The object key of a digest.
    public static func key(_ digest: Digest) -> String { "blobs/\(digest.algorithm)/\(digest.encoded)" }

    /// Learns what the local tier holds (on start-up), so its size limit counts it.
    public func loadLocalTier() async throws {
        let digests = try await local.storedDigests()
        let local = self.local
        // A stat per file: on the blocking pool, like the walk.
        let sizes = try await BlockingIO.run { digests.compactMap { digest in local.length(of: digest).map { (digest, $0) } } }
        let now = Date()
        tier.withLock { tier in
            for (digest, size) in sizes { tier.note(digest, size: size, at: now) }
        }
    }

    // MARK: - Reading

    public func length(of digest: Digest) async -> Int64? {
        if let size = local.length(of: digest) { return size }
        return await bucketLength(digest)
    }

    /// The content's length in the bucket; nil when it is not there or the bucket cannot say.
    private func bucketLength(_ digest: Digest) async -> Int64? {
        if let known = inBucket.value(for: digest) { return known }
        guard let size = try? await bucket.length(of: Self.key(digest)) else { return nil }
        inBucket.set(size, for: digest)
        return size
    }

    public func reader(_ digest: Digest, range: ClosedRange<Int64>?) async -> (any BlobReading)? {
        if let reader = local.localReader(digest, range: range) {
            noteUse(digest)
            return reader
        }
        guard await bucketLength(digest) != nil else { return nil }
        // Brought into the local tier by a download from the bucket (joined if one runs).
        let bucket = self.bucket
        let key = Self.key(digest)
        let download = try? local.fill(
            digest, join: true, scope: nil,
            open: {
                let object: (length: Int64?, body: ByteStream)?
                do {
                    object = try await bucket.get(key)
                } catch {
                    throw StorageError.unavailable("\(error)")
                }
                guard let object else { throw StorageError.unavailable("\(key) is no longer in the bucket") }
                return object
            },
            finished: { [weak self] result, date in await self?.promoted(digest, result, at: date) })
        if let download { return download.reader(range: range) }
        return local.localReader(digest, range: range)
    }

    /// A copy from the bucket ended: counted in the local tier, or, when the bucket's bytes
    /// were not the content (or are gone), forgotten there so the next client refetches.
    private func promoted(_ digest: Digest, _ result: Result<Int64, any Error>, at date: Date) async {
        switch result {
        case .success(let size):
            tier.withLock { $0.note(digest, size: size, at: date) }
            await trimLocalTier()
        case .failure(let error):
            inBucket.remove(digest)
            if case StorageError.digestMismatch = error { try? await bucket.delete(Self.key(digest)) }
        }
    }

    public func data(_ digest: Digest, limit: Int) async throws -> Data? {
        if let data = try await local.data(digest, limit: limit) { return data }
        let object: (length: Int64?, body: ByteStream)?
        do {
            object = try await bucket.get(Self.key(digest))
        } catch {
            throw StorageError.unavailable("\(error)")
        }
        guard let object else { return nil }
        let bytes = Data(try await object.body.collect(upTo: limit).readableBytesView)
        // The bucket's bytes are not trusted: the local store checks them before it writes, and
        // a copy that is not the content is deleted from the bucket.
        do {
            try await local.store(bytes, as: digest)
        } catch let error as StorageError {
            if case .digestMismatch = error { try? await bucket.delete(Self.key(digest)) }
            throw error
        }
        tier.withLock { $0.note(digest, size: Int64(bytes.count), at: Date()) }
        return bytes
    }

    // MARK: - Writing

    public func store(_ bytes: Data, as digest: Digest) async throws {
        let actual = Digest.sha256(bytes)
        guard actual == digest else {
            throw StorageError.digestMismatch(expected: digest.description, actual: actual.description, bytes: Int64(bytes.count))
        }
        if inBucket.value(for: digest) == nil {
            do {
                try await bucket.put(Self.key(digest), ByteBuffer(bytes: bytes), sha256: digest.encoded)
            } catch {
                throw StorageError.unavailable("\(error)")
            }
            inBucket.set(Int64(bytes.count), for: digest)
        }
        try await local.store(bytes, as: digest)
        tier.withLock { $0.note(digest, size: Int64(bytes.count), at: Date()) }
    }

    public func fill<Body: AsyncSequence & Sendable>(
        _ digest: Digest,
        join: Bool,
        scope: RepositoryKey?,
        now: @escaping @Sendable () -> Date,
        open: @escaping @Sendable () async throws -> (length: Int64?, body: Body),
        finished: @escaping @Sendable (Result<Int64, any Error>, Date) async -> Void
    ) async throws -> (any BlobDownload)? where Body.Element == ByteBuffer {
        let state = DownloadState()
        return try local.fill(
            digest, join: join, scope: scope, now: now,
            open: { try await self.openDownload(digest, join: join, scope: scope, state: state, open: open) },
            beforePublishing: { length, file in try await self.publish(digest, length: length, file: file, state: state) },
            finished: { [weak self] result, date in
                switch result {
                case .success(let size):
                    self?.inBucket.set(size, for: digest)
                    self?.tier.withLock { $0.note(digest, size: size, at: date) }
                case .failure:
                    await state.upload?.abort()
                }
                await finished(result, date)
                // Released once the row is written: a replica claiming it now finds it stored.
                await state.lease?.release()
                await self?.trimLocalTier()
            })
    }

    /// What one download turned out to be: whose it is, and the upload it feeds.
    final class DownloadState: Sendable {
        enum Role {
            /// Fetching from the upstream into the bucket (this replica's lease, or no fleet).
            case filler
            /// Streaming another replica's download: that replica uploads.
            case follower
            /// Copying what the bucket already holds.
            case copy
        }

        private let state = Mutex<(role: Role, upload: MultipartUpload?, lease: (any FillLease)?)>((.filler, nil, nil))

        var role: Role {
            get { state.withLock { $0.role } }
            set { state.withLock { $0.role = newValue } }
        }
        var upload: MultipartUpload? {
            get { state.withLock { $0.upload } }
            set { state.withLock { $0.upload = newValue } }
        }
        var lease: (any FillLease)? {
            get { state.withLock { $0.lease } }
            set { state.withLock { $0.lease = newValue } }
        }
    }

    /// Opens a download: with a fleet, the one replica holding its lease fetches from the
    /// upstream and the others stream from it (a replica that cannot be reached is replaced);
    /// without one, or when another name's download may not be followed (`join` false and another
    /// scope), straight from the upstream.
    private func openDownload<Body: AsyncSequence & Sendable>(
        _ digest: Digest, join: Bool, scope: RepositoryKey?, state: DownloadState,
        open: @Sendable () async throws -> (length: Int64?, body: Body)
    ) async throws -> (length: Int64?, body: FillBody<Body>) where Body.Element == ByteBuffer {
        if let fleet {
            var unreachable: String?
            claiming: for _ in 0..<4 {
                let claim: FillClaim
                do {
                    claim = try await fleet.coordinator.claim(digest, scope: scope, replacing: unreachable)
                } catch {
                    throw StorageError.unavailable("\(error)")
                }
                switch claim {
                case .owner(let lease):
                    state.lease = lease
                    // Another replica may have finished it just before: then the bucket has it.
                    if join, let object = try? await bucket.get(Self.key(digest)) {
                        state.role = .copy
                        return (object.length, .stream(object.body))
                    }
                    break claiming
                case .peer(let holder, let url, let leaseScope):
                    // Another name's download is followed only by a name allowed to read it.
                    guard join || leaseScope == scope else { break claiming }
                    do {
                        let (length, body) = try await fleet.peers.open(digest, at: url)
                        state.role = .follower
                        return (length, .stream(body))
                    } catch PeerFills.Failure.gone {
                        try await Task.sleep(for: .milliseconds(100))  // finished or failed: claim again
                    } catch {
                        fleet.logger.warning(
                            "a replica holding a download cannot be reached: taking it over",
                            metadata: ["digest": "\(digest)", "holder": "\(holder)", "error": "\(error)"])
                        unreachable = holder
                    }
                }
            }
        }
        let (length, body) = try await open()
        let upload: MultipartUpload
        do {
            upload = try await MultipartUpload.start(bucket, key: Self.key(digest), partSize: partSize, expectedLength: length)
        } catch {
            throw StorageError.unavailable("\(error)")
        }
        state.upload = upload
        return (length, .upstream(UploadingBody(base: body, upload: upload)))
    }

    /// Between the digest's match and the local file's publication: the object is made complete
    /// in the bucket (by this download's upload; by the replica it followed, waited for; or, if
    /// that replica did not finish it, from the verified local file).
    private func publish(_ digest: Digest, length: Int64, file: String, state: DownloadState) async throws {
        let key = Self.key(digest)
        do {
            switch state.role {
            case .copy: return
            case .filler: try await state.upload?.complete()
            case .follower:
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline {
                    if try await bucket.length(of: key) == length { return }
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await MultipartUpload.uploadFile(bucket, key: key, path: file, length: length, partSize: partSize)
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw StorageError.unavailable("\(error)")
        }
    }

    public func runningFill(_ digest: Digest) async -> (any BlobDownload)? {
        local.runningFill(digest)
    }

    // MARK: - Removing

    /// Removes content from both tiers (eviction across the fleet), unless it is busy here.
    public func remove(_ digest: Digest) async -> Bool {
        guard local.remove(digest) else { return false }
        tier.withLock { $0.forget(digest) }
        inBucket.remove(digest)
        do {
            try await bucket.delete(Self.key(digest))
            return true
        } catch {
            return false
        }
    }

    public func isBusy(_ digest: Digest) async -> Bool { local.isBusy(digest) }

    /// Every digest in the bucket: the bucket, not this disk, is what the catalog describes.
    public func storedDigests() async throws -> Set<Digest> {
        let prefix = "blobs/sha256/"
        do {
            return Set(try await bucket.objects(prefix: prefix).compactMap { Digest("sha256:" + $0.key.dropFirst(prefix.count)) })
        } catch {
            throw StorageError.unavailable("\(error)")
        }
    }

    public var fillsInFlight: Int { local.fillsInFlight }

    public func downloadsInProgress() async -> [DownloadProgress] { local.downloadsInProgress() }
    public var followers: Int { local.followers }

    public func problems() async -> [String] {
        var problems = await local.problems()
        do {
            try await bucket.checkBucket()
        } catch {
            problems.append("object storage bucket \(bucket.location.bucket) at \(bucket.location.host) is not usable: \(error)")
        }
        return problems
    }

    /// A presigned URL of the bucket for content not on this disk, when redirects are on.
    public func directURL(for digest: Digest) async -> String? {
        guard redirects, local.length(of: digest) == nil, local.runningFill(digest) == nil, await bucketLength(digest) != nil else {
            return nil
        }
        return bucket.presignedURL(Self.key(digest), expires: Self.redirectLifetime)
    }

    // MARK: - The local tier

    private func noteUse(_ digest: Digest) {
        tier.withLock { tier in
            if let entry = tier.entries[digest] { tier.entries[digest] = (entry.size, Date()) }
        }
    }

    /// Removes local copies, least recently used first, until the tier fits (the bucket keeps them).
    public func trimLocalTier() async {
        guard let localLimit else { return }
        let victims: [Digest] = tier.withLock { tier in
            guard tier.size > localLimit else { return [] }
            var excess = tier.size - localLimit
            var chosen: [Digest] = []
            for (digest, entry) in tier.entries.sorted(by: { $0.value.used < $1.value.used }) where excess > 0 {
                chosen.append(digest)
                excess -= entry.size
            }
            return chosen
        }
        for digest in victims where local.remove(digest) {
            tier.withLock { $0.forget(digest) }
        }
    }

    /// Aborts multipart uploads under `blobs/` older than `age` that no download here runs (a
    /// replica that died mid-download left them). Returns how many were aborted.
    @discardableResult
    public func sweepAbandonedUploads(olderThan age: Duration, now: Date = Date()) async throws -> Int {
        let cutoff = now.addingTimeInterval(-Double(age.components.seconds))
        var aborted = 0
        for upload in try await bucket.multipartUploads(prefix: "blobs/") {
            guard let initiated = upload.initiated, initiated < cutoff else { continue }
            if let digest = upload.key.split(separator: "/").last.flatMap({ Digest("sha256:" + $0) }), local.runningFill(digest) != nil {
                continue
            }
            try await bucket.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
            aborted += 1
        }
        return aborted
    }
}
