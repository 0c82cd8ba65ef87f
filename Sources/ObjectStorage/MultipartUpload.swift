import Cache
import Foundation
import NIOCore
import RegistryClient

/// One blob's multipart upload, fed chunk by chunk by its download.
///
/// Parts are cut at `partSize` and sent while the next one fills (at most one part in flight,
/// so a download holds at most two parts in memory). The object becomes visible only at
/// ``complete()``, which its store calls after the digest matched; ``abort()`` frees the parts.
actor MultipartUpload {
    /// S3 takes at most 10 000 parts; every one but the last at least 5 MiB.
    static let maximumParts = 10_000
    static let minimumPartSize = 5 << 20

    let client: S3Client
    let key: String
    let uploadID: String
    let partSize: Int
    private var pending = ByteBuffer()
    private var parts: [(number: Int, etag: String)] = []
    private var sending: Task<(number: Int, etag: String), any Error>?

    /// Starts the upload (so an unreachable store fails the download before its first byte).
    /// `expectedLength`, when announced, raises the part size so the parts fit S3's count.
    static func start(_ client: S3Client, key: String, partSize: Int, expectedLength: Int64?) async throws -> MultipartUpload {
        let needed = expectedLength.map { Int(($0 + Int64(maximumParts) - 2) / Int64(maximumParts - 1)) } ?? 0
        let id = try await client.createMultipartUpload(key)
        return MultipartUpload(client: client, key: key, uploadID: id, partSize: max(partSize, minimumPartSize, needed))
    }

    private init(client: S3Client, key: String, uploadID: String, partSize: Int) {
        self.client = client
        self.key = key
        self.uploadID = uploadID
        self.partSize = partSize
    }

    /// Adds downloaded bytes; sends a part when one is full.
    func append(_ chunk: ByteBuffer) async throws {
        var chunk = chunk
        pending.writeBuffer(&chunk)
        while pending.readableBytes >= partSize, let part = pending.readSlice(length: partSize) {
            try await send(part)
        }
        if pending.readerIndex > partSize { pending.discardReadBytes() }
    }

    /// Sends what is left and makes the object: only now is it visible.
    func complete() async throws {
        if pending.readableBytes > 0 || parts.isEmpty && sending == nil {
            try await send(pending.slice())
            pending.clear()
        }
        if let sending { parts.append(try await sending.value) }
        sending = nil
        try await client.completeMultipartUpload(key, uploadID: uploadID, parts: parts)
    }

    /// Abandons the upload; best effort (a sweep removes what a failure here leaves).
    func abort() async {
        sending?.cancel()
        _ = try? await sending?.value
        sending = nil
        try? await client.abortMultipartUpload(key, uploadID: uploadID)
    }

    /// Waits for the part in flight, then starts this one.
    private func send(_ part: ByteBuffer) async throws {
        if let sending { parts.append(try await sending.value) }
        let number = parts.count + 1
        guard number <= Self.maximumParts else {
            sending = nil
            throw S3Error(operation: "UploadPart", status: 0, code: "TooManyParts", message: "more than \(Self.maximumParts) parts")
        }
        let (client, key, uploadID) = (client, key, uploadID)
        sending = Task { (number, try await client.uploadPart(key, uploadID: uploadID, number: number, part)) }
    }
}

extension MultipartUpload {
    /// Uploads a complete local file (`length` bytes) and completes the object.
    static func uploadFile(_ client: S3Client, key: String, path: String, length: Int64, partSize: Int) async throws {
        let upload = try await start(client, key: key, partSize: partSize, expectedLength: length)
        do {
            let size = upload.partSize
            var offset: Int64 = 0
            while offset < length {
                let count = Int(min(Int64(size), length - offset))
                let at = offset
                let part = try await BlockingIO.run { () throws -> ByteBuffer in
                    guard let handle = FileHandle(forReadingAtPath: path) else { throw StorageError.system("open \(path)", errno) }
                    defer { try? handle.close() }
                    try handle.seek(toOffset: UInt64(at))
                    let data = try handle.read(upToCount: count) ?? Data()
                    guard data.count == count else { throw StorageError.lengthMismatch(expected: length, actual: at + Int64(data.count)) }
                    return ByteBuffer(bytes: data)
                }
                try await upload.append(part)
                offset += Int64(count)
            }
            try await upload.complete()
        } catch {
            await upload.abort()
            throw error
        }
    }
}

/// A download's body that feeds a ``MultipartUpload`` as it is read: the bytes reach the store's
/// local file and the bucket from one pass over the upstream's answer.
struct UploadingBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let upload: MultipartUpload

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let upload: MultipartUpload

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else { return nil }
            try await upload.append(chunk)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), upload: upload)
    }
}

/// Where a download's bytes come from: the upstream (and into the bucket as they are read), or a
/// stream that needs no upload (another replica's download, the bucket itself).
enum FillBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    case upstream(UploadingBody<Base>)
    case stream(ByteStream)

    enum AsyncIterator: AsyncIteratorProtocol {
        case upstream(UploadingBody<Base>.AsyncIterator)
        case stream(ByteStream.AsyncIterator)

        mutating func next() async throws -> ByteBuffer? {
            switch self {
            case .upstream(var iterator):
                let chunk = try await iterator.next()
                self = .upstream(iterator)
                return chunk
            case .stream(var iterator):
                let chunk = try await iterator.next()
                self = .stream(iterator)
                return chunk
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        switch self {
        case .upstream(let body): .upstream(body.makeAsyncIterator())
        case .stream(let body): .stream(body.makeAsyncIterator())
        }
    }
}
