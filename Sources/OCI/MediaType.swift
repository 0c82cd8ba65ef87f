import Foundation

/// A media type as it appears in `Content-Type`, `Accept` and descriptors.
///
/// `rawValue` is kept exactly as given; use ``init(contentType:)`` for a header value, which
/// drops parameters and case.
public struct MediaType: Hashable, Sendable, Codable, RawRepresentable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    /// The media type of a `Content-Type` header value: parameters (`; charset=utf-8`) and
    /// surrounding whitespace removed, lowercased.
    public init(contentType: String) {
        let essence = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        self.rawValue = essence.trimmingWhitespace.lowercased()
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.rawValue = try container.decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    public static let ociIndex: MediaType = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest: MediaType = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig: MediaType = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer: MediaType = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip: MediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd: MediaType = "application/vnd.oci.image.layer.v1.tar+zstd"
    /// The OCI empty descriptor's media type (`{}`), used by artifacts.
    public static let ociEmpty: MediaType = "application/vnd.oci.empty.v1+json"
    public static let dockerManifestList: MediaType = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest: MediaType = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig: MediaType = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip: MediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    /// Docker image manifest schema 1, signed; long deprecated, still served by old registries.
    public static let dockerManifestV1Signed: MediaType = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    /// Docker image manifest schema 1, unsigned.
    public static let dockerManifestV1: MediaType = "application/vnd.docker.distribution.manifest.v1+json"
    /// The OCI artifact manifest of image-spec 1.1's release candidates, since withdrawn.
    public static let ociArtifactManifest: MediaType = "application/vnd.oci.artifact.manifest.v1+json"
    public static let json: MediaType = "application/json"
    public static let octetStream: MediaType = "application/octet-stream"

    /// An OCI image index or a Docker manifest list.
    public var isIndex: Bool { self == .ociIndex || self == .dockerManifestList }

    /// An OCI image manifest or a Docker v2 schema 2 manifest.
    public var isImageManifest: Bool { self == .ociManifest || self == .dockerManifest }

    /// ``isIndex`` or ``isImageManifest``.
    public var isManifest: Bool { isIndex || isImageManifest }

    /// The four index and manifest types, in the order Archway sends them as a default `Accept`.
    public static let manifestTypes: [MediaType] = [.ociIndex, .dockerManifestList, .ociManifest, .dockerManifest]
}

extension Substring {
    /// The text without the whitespace (newlines included) around it; by hand, without
    /// Foundation's bridging, because headers are trimmed on every request.
    public var trimmingWhitespace: Substring {
        var text = self
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }
}
