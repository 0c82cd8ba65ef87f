import Foundation
import NIOCore
import OCI
import Synchronization

/// Reads stored content, or content still being filled, from one offset to an end, in chunks.
///
/// While a ``Fill`` runs the reader follows it: it takes what was written and waits for more.
/// It holds a lease on the digest, so eviction leaves the file alone while it reads.
public final class BlobReader: BlobReading {
    public static let chunkSize = 256 << 10

    let file: FileDescriptor
    let fill: Fill?
    let lease: LocalBlobStore.Lease
    /// The first byte and the end (exclusive; nil: the end of the content, not known yet).
    public let start: Int64
    let end: Int64?
    private let position: OffsetBox

    init(file: FileDescriptor, fill: Fill?, lease: LocalBlobStore.Lease, start: Int64, end: Int64?) {
        self.file = file
        self.fill = fill
        self.lease = lease
        self.start = start
        self.end = end
        self.position = OffsetBox(start)
    }

    /// The next chunk of at most `limit` bytes, nil at the end. Throws when the fill it follows
    /// failed.
    public func next(upTo limit: Int = BlobReader.chunkSize) async throws -> ByteBuffer? {
        let chunkSize = Int64(max(1, limit))
        let offset = position.value
        guard let fill else {
            let last = try end ?? file.size()
            guard offset < last else { return nil }
            let chunk = try await read(count: Int(min(chunkSize, last - offset)), at: offset)
            guard chunk.readableBytes > 0 else { throw StorageError.lengthMismatch(expected: last, actual: offset) }
            position.value = offset + Int64(chunk.readableBytes)
            return chunk
        }
        while true {
            try Task.checkCancellation()
            let snapshot = fill.snapshot
            if case .failure(let error) = snapshot.outcome { throw error }
            let complete = if case .success = snapshot.outcome { true } else { false }
            let available = min(snapshot.readable, end ?? .max)
            if offset < available {
                let chunk = try await read(count: Int(min(chunkSize, available - offset)), at: offset)
                position.value = offset + Int64(chunk.readableBytes)
                return chunk
            }
            if complete { return nil }
            if let end, offset >= end { return nil }
            await fill.waitForChange(since: snapshot)
        }
    }

    /// `pread` on the blocking pool.
    private func read(count: Int, at offset: Int64) async throws -> ByteBuffer {
        let file = self.file
        return try await BlockingIO.run { try file.read(count: count, at: offset) }
    }
}

extension BlobReader {
    /// Whether the content was stored whole when the reader was made (no download to follow).
    public var isStored: Bool { fill == nil }

    /// A duplicate of the open descriptor, for a server that lets the kernel send the file
    /// (`sendfile`); the caller owns and closes it. While a fill runs it is the file being
    /// written: send only up to ``readable(beyond:)``. Keep the reader alive until the bytes are
    /// sent: its lease keeps eviction away from the digest.
    public func duplicateDescriptor() -> Int32? {
        let copy = fcntl(file.fd, F_DUPFD_CLOEXEC, 0)
        return copy >= 0 ? copy : nil
    }

    /// How far the file may be sent: the content's length once stored, else what the running
    /// fill has written and may be served (never the last byte before the digest is verified).
    /// Waits until that is past `offset`, or the content is complete; throws when the fill failed.
    public func readable(beyond offset: Int64) async throws -> Int64 {
        guard let fill else { return try file.size() }
        while true {
            try Task.checkCancellation()
            let snapshot = fill.snapshot
            switch snapshot.outcome {
            case .failure(let error): throw error
            case .success(let length): return length
            case nil: if snapshot.readable > offset { return snapshot.readable }
            }
            await fill.waitForChange(since: snapshot)
        }
    }
}

/// A reader's position; only its one consumer moves it.
final class OffsetBox: Sendable {
    private let storage: Atomic<Int64>

    init(_ value: Int64) {
        storage = Atomic(value)
    }

    var value: Int64 {
        get { storage.load(ordering: .relaxed) }
        set { storage.store(newValue, ordering: .relaxed) }
    }
}
