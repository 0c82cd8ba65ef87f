import Foundation

/// An OCI image index or a Docker manifest list.
///
/// Upstream indexes are decoded only to be read. The indexes Archway synthesizes are the only
/// manifest bytes it authors: ``canonicalJSON()`` makes those deterministic.
public struct ImageIndex: Hashable, Sendable, Codable {
    public var schemaVersion: Int
    public var mediaType: MediaType?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(
        schemaVersion: Int = 2,
        mediaType: MediaType? = nil,
        artifactType: String? = nil,
        manifests: [Descriptor],
        subject: Descriptor? = nil,
        annotations: [String: String]? = nil
    ) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.manifests = manifests
        self.subject = subject
        self.annotations = annotations
    }

    /// The index as compact JSON with sorted keys and unescaped slashes: the same value gives the
    /// same bytes, and so the same digest, on every machine and every run.
    ///
    /// The order of ``manifests`` is kept; sorting them is the caller's decision.
    public func canonicalJSON() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(self)
        } catch {
            // Only strings, integers, arrays and string maps: encoding cannot fail.
            preconditionFailure("encoding an ImageIndex failed: \(error)")
        }
    }
}
