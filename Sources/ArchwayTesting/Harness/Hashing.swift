import Crypto
import Foundation

/// `"sha256:<hex>"` of `data`.
public func sha256Digest(_ data: Data) -> String {
    "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// A streaming SHA-256 that never holds more than one chunk in memory.
public struct StreamingSHA256: Sendable {
    private var hasher = SHA256()
    public private(set) var byteCount: Int64 = 0

    public init() {}

    public mutating func update(_ data: Data) {
        hasher.update(data: data)
        byteCount += Int64(data.count)
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: buffer)
        byteCount += Int64(buffer.count)
    }

    /// `"sha256:<hex>"`; the hasher can not be used afterwards.
    public func finalizeDigest() -> String {
        "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// Streams a file through SHA-256 in 1 MiB chunks and returns `"sha256:<hex>"`.
public func sha256OfFile(_ url: URL) throws -> String {
    try sha256AndSizeOfFile(url).digest
}

/// Streams a file through SHA-256 in 1 MiB chunks; returns the digest and the byte count.
public func sha256AndSizeOfFile(_ url: URL) throws -> (digest: String, size: Int64) {
    let handle = try FileHandle(forReadingFrom: url)
    defer { try? handle.close() }
    var hasher = StreamingSHA256()
    while true {
        let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
        if chunk.isEmpty { break }
        hasher.update(chunk)
    }
    return (hasher.finalizeDigest(), hasher.byteCount)
}
