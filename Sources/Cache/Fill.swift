import Foundation
import NIOCore
import OCI
import Synchronization

/// One upstream download of one digest into `tmp/`, followed by any number of readers.
///
/// The download hashes as it writes and publishes the length written so far; readers
/// (``BlobReader``) read the growing file from their own offset and wait for more. Slow readers
/// never slow the download (the disk is the buffer), and the download goes on when every reader
/// has left. On a digest match the file is synced and renamed into `blobs/`; on any failure
/// it is removed and every reader fails: a reader never gets the last byte before the whole
/// content was verified, so no client ever holds unverified content that looks complete.
public final class Fill: BlobDownload {
    public let digest: Digest
    /// For whom it downloads (the caller's key, e.g. a repository name): who may follow it
    /// without asking whether the content is theirs to read. The store itself ignores it.
    public let scope: RepositoryKey?
    /// The store it fills: readers take their lease there.
    let store: LocalBlobStore
    let temporaryPath: String
    let finalPath: String
    let file: FileDescriptor
    let startedAt = Date()
    private let state = Mutex(State())

    struct State: WaitableState {
        var lengthKnown = false
        var expectedLength: Int64?
        var written: Int64 = 0
        var outcome: Result<Int64, any Error>?
        var waiters = Waiters()
    }

    /// What a reader sees at one moment.
    struct Snapshot {
        var lengthKnown: Bool
        var expectedLength: Int64?
        /// Bytes a reader may take: all of them once verified, all but the last before.
        var readable: Int64
        var outcome: Result<Int64, any Error>?
    }

    init(digest: Digest, scope: RepositoryKey? = nil, store: LocalBlobStore, temporaryPath: String, finalPath: String) throws(StorageError)
    {
        self.digest = digest
        self.scope = scope
        self.store = store
        self.temporaryPath = temporaryPath
        self.finalPath = finalPath
        self.file = try FileDescriptor.open(temporaryPath, flags: O_RDWR | O_CREAT | O_EXCL)
    }

    /// Downloads: `open` answers the upstream's announced length and the body;
    /// `beforePublishing` runs after the digest matched, before the file is moved into place.
    /// Returns the outcome and when it was reached, by `now`.
    func run<Body: AsyncSequence & Sendable>(
        _ open: @Sendable () async throws -> (length: Int64?, body: Body),
        now: @Sendable () -> Date,
        beforePublishing: (@Sendable (_ length: Int64, _ file: String) async throws -> Void)? = nil
    ) async -> (result: Result<Int64, any Error>, completedAt: Date) where Body.Element == ByteBuffer {
        let result: Result<Int64, any Error>
        do {
            let (length, body) = try await open()
            update {
                $0.lengthKnown = true
                $0.expectedLength = length
            }
            // Each chunk is written and hashed on the blocking pool: eight downloads at disk
            // speed must not take the threads that answer every other request.
            let hasher = RunningHash()
            let file = self.file
            var offset: Int64 = 0
            for try await chunk in body {
                if let length, offset + Int64(chunk.readableBytes) > length {
                    throw StorageError.lengthMismatch(expected: length, actual: offset + Int64(chunk.readableBytes))
                }
                let at = offset
                try await BlockingIO.background {
                    try file.write(chunk, at: at)
                    hasher.update(chunk)
                }
                offset += Int64(chunk.readableBytes)
                let written = offset
                update { $0.written = written }
            }
            if let length, offset != length { throw StorageError.lengthMismatch(expected: length, actual: offset) }
            let actual = hasher.finalize()
            guard actual == digest else {
                throw StorageError.digestMismatch(expected: digest.description, actual: actual.description, bytes: offset)
            }
            try await beforePublishing?(offset, temporaryPath)
            // fdatasync can take a second for a large blob: on a thread of NIO's pool, never on
            // one of the few threads every request's task runs on.
            let (temporaryPath, finalPath) = (self.temporaryPath, self.finalPath)
            try await BlockingIO.background {
                try file.synchronize()
                try Self.moveIntoPlace(temporaryPath, finalPath)
            }
            result = .success(offset)
        } catch {
            unlink(temporaryPath)
            result = .failure(error)
        }
        // Stamped before readers learn the outcome: a client served after this moment then
        // counts as a later use of its content than the download itself.
        let completedAt = now()
        update {
            $0.lengthKnown = true
            $0.outcome = result
        }
        return (result, completedAt)
    }

    static func moveIntoPlace(_ temporaryPath: String, _ finalPath: String) throws(StorageError) {
        let directory = (finalPath as NSString).deletingLastPathComponent
        if mkdir(directory, 0o755) != 0, errno != EEXIST { throw StorageError.system("mkdir \(directory)", errno) }
        guard rename(temporaryPath, finalPath) == 0 else { throw StorageError.system("rename into \(finalPath)", errno) }
    }

    // MARK: - Readers

    /// A reader that follows the download from `range` (the whole content when nil).
    public func reader(range: ClosedRange<Int64>?) -> any BlobReading {
        store.reader(following: self, range: range)
    }

    /// How far it has come.
    var progress: DownloadProgress {
        state.withLock { state in
            DownloadProgress(
                digest: digest, repository: scope?.description, expected: state.expectedLength, written: state.written,
                startedAt: startedAt)
        }
    }

    var snapshot: Snapshot {
        state.withLock { state in
            let verified = if case .success = state.outcome { true } else { false }
            return Snapshot(
                lengthKnown: state.lengthKnown,
                expectedLength: state.expectedLength,
                readable: verified ? state.written : max(0, state.written - 1),
                outcome: state.outcome
            )
        }
    }

    /// The download ended and its content was verified and stored.
    public var isVerified: Bool {
        if case .success = snapshot.outcome { true } else { false }
    }

    /// The upstream's announced length, once it answered; throws when it failed before.
    public func length() async throws -> Int64? {
        while true {
            let snapshot = self.snapshot
            if case .failure(let error) = snapshot.outcome { throw error }
            if snapshot.lengthKnown { return snapshot.expectedLength }
            await waitForChange(since: snapshot)
        }
    }

    /// Waits for the download to end; returns its length or throws its failure.
    public func result() async throws -> Int64 {
        while true {
            let snapshot = self.snapshot
            if let outcome = snapshot.outcome { return try outcome.get() }
            await waitForChange(since: snapshot)
        }
    }

    /// Suspends until anything changed after `snapshot` was taken (or the task is cancelled).
    func waitForChange(since snapshot: Snapshot) async {
        await state.wait { state in
            let readable = state.outcome == nil ? max(0, state.written - 1) : state.written
            return state.outcome != nil || readable != snapshot.readable || state.lengthKnown != snapshot.lengthKnown
        }
    }

    private func update(_ change: (inout State) -> Void) {
        let waiters = state.withLock { state in
            change(&state)
            return state.waiters.takeAll()
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// A download's hash, updated on the blocking pool one chunk after another.
private final class RunningHash: Sendable {
    private let hasher = Mutex(DigestHasher())

    func update(_ chunk: ByteBuffer) {
        hasher.withLock { $0.update(chunk) }
    }

    func finalize() -> Digest {
        hasher.withLock { $0.finalize() }
    }
}
