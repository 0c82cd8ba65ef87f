/// An OCI image manifest or a Docker v2 schema 2 manifest, decoded for reading.
///
/// Decode to read; never re-encode an upstream manifest to serve it (``Manifest/bytes`` is the truth).
public struct ImageManifest: Hashable, Sendable, Codable {
    public var schemaVersion: Int
    public var mediaType: MediaType?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(
        schemaVersion: Int = 2,
        mediaType: MediaType? = nil,
        artifactType: String? = nil,
        config: Descriptor,
        layers: [Descriptor],
        subject: Descriptor? = nil,
        annotations: [String: String]? = nil
    ) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.config = config
        self.layers = layers
        self.subject = subject
        self.annotations = annotations
    }
}
