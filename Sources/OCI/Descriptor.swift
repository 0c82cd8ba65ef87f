/// The spec's content descriptor: what a manifest or index says about the content it points to.
public struct Descriptor: Hashable, Sendable, Codable {
    public var mediaType: MediaType
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var platform: Platform?
    public var artifactType: String?

    public init(
        mediaType: MediaType,
        digest: Digest,
        size: Int64,
        urls: [String]? = nil,
        annotations: [String: String]? = nil,
        platform: Platform? = nil,
        artifactType: String? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.urls = urls
        self.annotations = annotations
        self.platform = platform
        self.artifactType = artifactType
    }

    /// The annotation buildx puts on the attestation entries of an index.
    public static let referenceTypeAnnotation = "vnd.docker.reference.type"

    /// An index entry that is an attestation (SBOM, provenance) rather than an image:
    /// annotated `vnd.docker.reference.type: attestation-manifest`, or of platform `unknown/unknown`.
    public var isAttestation: Bool {
        if annotations?[Self.referenceTypeAnnotation] == "attestation-manifest" {
            return true
        }
        if let platform, platform.os == "unknown", platform.architecture == "unknown" {
            return true
        }
        return false
    }
}
