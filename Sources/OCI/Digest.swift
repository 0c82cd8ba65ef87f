import Foundation

/// A content digest, `sha256:` followed by 64 lowercase hex characters.
///
/// Only sha256 is accepted, and only in its canonical form: uppercase hex, other algorithms and
/// any other spelling are refused rather than normalized, because a digest names bytes on disk
/// and in URLs and must have exactly one spelling.
///
/// ```swift
/// let digest = try Digest(parsing: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
/// digest.encoded  // "e3b0c442…"
/// ```
public struct Digest: Hashable, Sendable, Comparable, Codable, CustomStringConvertible, LosslessStringConvertible {
    /// Always `sha256`.
    public let algorithm: String
    /// 64 lowercase hex characters.
    public let encoded: String

    /// The only algorithm accepted.
    public static let sha256Algorithm = "sha256"

    /// Parses a digest; nil for anything ``init(parsing:)`` would refuse.
    public init?(_ description: String) {
        guard let digest = try? Digest(parsing: description) else {
            return nil
        }
        self = digest
    }

    /// Parses a digest, throwing `DIGEST_INVALID` with a message that says what is wrong.
    public init(parsing string: String) throws(RegistryError) {
        guard !string.isEmpty else {
            throw RegistryError(.digestInvalid, "digest is empty; expected sha256:<64 lowercase hex>")
        }
        guard let colon = string.utf8.firstIndex(of: UInt8(ascii: ":")) else {
            throw RegistryError(
                .digestInvalid,
                "digest \(RegistryError.quote(string)) has no algorithm; expected sha256:<64 lowercase hex>"
            )
        }
        let algorithm = string[..<colon]
        guard algorithm == Self.sha256Algorithm else {
            throw RegistryError(
                .digestInvalid,
                "digest algorithm \(RegistryError.quote(algorithm)) is not supported; only sha256 is accepted"
            )
        }
        let encoded = string[string.utf8.index(after: colon)...]
        guard encoded.utf8.count == 64 else {
            throw RegistryError(
                .digestInvalid,
                "sha256 digest must have 64 hex characters after \"sha256:\", found \(encoded.utf8.count) bytes"
            )
        }
        for (offset, byte) in encoded.utf8.enumerated() where !Self.isLowercaseHex(byte) {
            let kind = (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte) ? "uppercase hex" : "a non-hex byte"
            throw RegistryError(
                .digestInvalid,
                "sha256 digest has \(kind) at offset \(offset); expected 64 lowercase hex characters"
            )
        }
        self.init(validatedEncoded: String(encoded))
    }

    /// A sha256 digest from hex already known to be 64 lowercase characters.
    init(validatedEncoded encoded: String) {
        self.algorithm = Self.sha256Algorithm
        self.encoded = encoded
    }

    /// The sha256 digest of `bytes`.
    public static func sha256(_ bytes: some DataProtocol) -> Digest {
        var hasher = DigestHasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// `sha256:<hex>`.
    public var description: String { "\(algorithm):\(encoded)" }

    public static func < (lhs: Digest, rhs: Digest) -> Bool {
        lhs.description < rhs.description
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do throws(RegistryError) {
            self = try Digest(parsing: string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
