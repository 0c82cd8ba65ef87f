// The one file that imports swift-crypto: its public `Digest` protocol would clash with ours.
import Crypto
import Foundation
import NIOCore

/// A streaming sha256, for hashing a blob as it arrives.
///
/// ```swift
/// var hasher = DigestHasher()
/// for try await chunk in body { hasher.update(chunk) }
/// guard hasher.finalize() == expected else { … }
/// ```
public struct DigestHasher: Sendable {
    private var hash = SHA256()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hash.update(bufferPointer: bytes)
    }

    /// Hashes the readable bytes of `buffer`; the buffer is not consumed.
    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
    }

    public mutating func update(_ bytes: some DataProtocol) {
        hash.update(data: bytes)
    }

    /// The digest of everything so far. Does not end the hasher: more updates may follow.
    public func finalize() -> Digest {
        let bytes = hash.finalize()
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        let digits = Array("0123456789abcdef".utf8)
        for byte in bytes {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return Digest(validatedEncoded: String(decoding: hex, as: UTF8.self))
    }
}

/// HMAC-SHA256, for request signatures (AWS Signature Version 4) and shared secrets.
public enum HMACSHA256 {
    /// The authentication code of `message` under `key`.
    public static func code(key: some ContiguousBytes, message: some DataProtocol) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
