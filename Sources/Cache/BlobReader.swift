import Foundation
import NIOCore
import OCI
import Synchronization

/// Reads stored content, or content still being filled, from one offset to an end, in chunks.
///
/// While a ``Fill`` runs the reader follows it: it takes what was written and waits for more.
/// It holds a lease on the digest, so eviction leaves the file alone while it reads.
public final class BlobReader: Sendable {
    public static let chunkSize = 256 << 10

    let file: FileDescriptor
    let fill: Fill?
    let lease: BlobStore.Lease
    /// The first byte and the end (exclusive; nil: the end of the content, not known yet).
    public let start: Int64
    let end: Int64?
    private let position: OffsetBox

    init(file: FileDescriptor, fill: Fill?, lease: BlobStore.Lease, start: Int64, end: Int64?) {
        self.file = file
        self.fill = fill
        self.lease = lease
        self.start = start
        self.end = end
        self.position = OffsetBox(start)
    }

    /// The next chunk, nil at the end. Throws when the fill it follows failed.
    public func next() async throws -> ByteBuffer? {
        let offset = position.value
        guard let fill else {
            let limit = try end ?? file.size()
            guard offset < limit else { return nil }
            let chunk = try file.read(count: Int(min(Int64(Self.chunkSize), limit - offset)), at: offset)
            guard chunk.readableBytes > 0 else { throw StorageError.lengthMismatch(expected: limit, actual: offset) }
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
                let chunk = try file.read(count: Int(min(Int64(Self.chunkSize), available - offset)), at: offset)
                position.value = offset + Int64(chunk.readableBytes)
                return chunk
            }
            if complete { return nil }
            if let end, offset >= end { return nil }
            await fill.waitForChange(since: snapshot)
        }
    }
}

extension BlobReader {
    /// Stored content as a region of a file, for a server that lets the kernel send it
    /// (`sendfile`): a duplicate of the open descriptor, which the caller owns and closes, and
    /// the bytes `start..<end`. Nil while the content is still being filled. Keep the reader alive
    /// until the bytes are sent: its lease keeps eviction away from the digest.
    public func duplicateStoredRegion() -> (descriptor: Int32, start: Int64, end: Int64)? {
        guard fill == nil, let end = try? end ?? file.size() else { return nil }
        let copy = fcntl(file.fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return nil }
        return (copy, start, end)
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
