import Foundation

/// A manifest as served: its exact bytes, its media type, and the digest of those bytes.
///
/// The bytes are the truth: they are what was hashed and what is served. ``decoded()`` reads
/// them; nothing here re-encodes them.
public struct Manifest: Hashable, Sendable {
    public let bytes: Data
    public let mediaType: MediaType
    public let digest: Digest

    /// The largest manifest accepted, in bytes (4 MiB, as distribution).
    public static let maximumSize = 4 * 1024 * 1024

    /// A manifest from bytes Archway trusts (it authored them, or read them from its own store);
    /// no checks beyond computing the digest.
    public init(bytes: Data, mediaType: MediaType) {
        self.bytes = bytes
        self.mediaType = mediaType
        self.digest = .sha256(bytes)
    }

    /// A manifest from bytes an upstream sent, checked.
    ///
    /// - `MANIFEST_INVALID` when the bytes are larger than ``maximumSize`` or not a JSON object.
    /// - `DIGEST_INVALID` when `expected` is given and differs from the digest of the bytes.
    ///
    /// The media type is `mediaType` when that names a type of its own. When it is nil, or only
    /// a generic `application/json`, `application/octet-stream`, `text/plain` or empty (what a
    /// misconfigured server sends), the type is read from the JSON: its `mediaType` field, else
    /// its shape (`manifests` is an OCI index, `layers` an OCI manifest, `schemaVersion` 1 a
    /// signed Docker schema 1 manifest). A nil `mediaType` that cannot be detected this way is
    /// `MANIFEST_INVALID`, and so is a generic one.
    ///
    /// What is not a manifest is refused (`MANIFEST_INVALID`), so nothing else is ever cached or
    /// served as one (an internal service's JSON reached through a redirect, say): the type must be
    /// one of the manifest types, the JSON's own `mediaType` must not contradict it, and an index
    /// or image manifest must decode as one.
    public init(bytes: Data, mediaType: MediaType?, expected: Digest?) throws(RegistryError) {
        guard bytes.count <= Self.maximumSize else {
            throw RegistryError(
                .manifestInvalid,
                "manifest is \(bytes.count) bytes; the limit is \(Self.maximumSize)"
            )
        }
        let probe: ManifestProbe
        do {
            probe = try JSONDecoder().decode(ManifestProbe.self, from: bytes)
        } catch {
            throw RegistryError(.manifestInvalid, "manifest is not a JSON object")
        }
        let digest = Digest.sha256(bytes)
        if let expected, expected != digest {
            throw RegistryError(
                .digestInvalid,
                "manifest digest mismatch: expected \(expected), computed \(digest)"
            )
        }
        let resolved: MediaType
        if let mediaType, !Self.genericTypes.contains(mediaType) {
            resolved = mediaType
        } else if let detected = probe.detectedMediaType {
            resolved = detected
        } else {
            throw RegistryError(
                .manifestInvalid,
                "cannot tell the manifest's media type: it has no mediaType field and no manifests or layers"
            )
        }
        guard resolved.isManifest || Self.otherManifestTypes.contains(resolved) else {
            throw RegistryError(.manifestInvalid, "\(RegistryError.quote(resolved.rawValue)) is not a manifest media type")
        }
        if let declared = probe.mediaType, !declared.isEmpty, MediaType(rawValue: declared) != resolved {
            throw RegistryError(
                .manifestInvalid,
                "the manifest says it is a \(RegistryError.quote(declared)) but was served as a \(resolved)")
        }
        self.bytes = bytes
        self.mediaType = resolved
        self.digest = digest
        if resolved.isManifest {
            _ = try decoded()
        } else if resolved == .dockerManifestV1Signed || resolved == .dockerManifestV1, probe.schemaVersion != 1 {
            throw RegistryError(.manifestInvalid, "a \(resolved) must have schemaVersion 1")
        }
    }

    /// Manifest types besides indexes and image manifests that registries still serve.
    private static let otherManifestTypes: Set<MediaType> = [.dockerManifestV1Signed, .dockerManifestV1, .ociArtifactManifest]

    /// Content types that say nothing about which manifest this is.
    private static let genericTypes: Set<MediaType> = [.json, .octetStream, "text/plain", ""]

    public var size: Int64 { Int64(bytes.count) }

    /// A descriptor of this manifest: media type, digest and size.
    public var descriptor: Descriptor {
        Descriptor(mediaType: mediaType, digest: digest, size: size)
    }

    /// The manifest decoded as an image manifest or an index; `MANIFEST_INVALID` when the JSON
    /// does not have the shape its media type promises, or it is neither (e.g. schema 1).
    ///
    /// A media type outside the four index and manifest types is decided by shape.
    public func decoded() throws(RegistryError) -> DecodedManifest {
        let isIndex: Bool
        if mediaType.isIndex {
            isIndex = true
        } else if mediaType.isImageManifest {
            isIndex = false
        } else {
            let probe = try? JSONDecoder().decode(ManifestProbe.self, from: bytes)
            if probe?.hasManifests == true {
                isIndex = true
            } else if probe?.hasLayers == true || probe?.hasConfig == true {
                isIndex = false
            } else {
                throw RegistryError(.manifestInvalid, "a manifest of type \(mediaType) is neither an image manifest nor an index")
            }
        }
        do {
            if isIndex {
                return .index(try JSONDecoder().decode(ImageIndex.self, from: bytes))
            }
            return .image(try JSONDecoder().decode(ImageManifest.self, from: bytes))
        } catch {
            let kind = isIndex ? "image index" : "image manifest"
            throw RegistryError(.manifestInvalid, "\(kind) is invalid: \(DecodingFailure.describe(error))")
        }
    }
}

/// What ``Manifest/decoded()`` finds: an image manifest or an index.
public enum DecodedManifest: Hashable, Sendable {
    case image(ImageManifest)
    case index(ImageIndex)
}

/// The few top-level facts of a manifest needed to tell its type, read without decoding it all.
private struct ManifestProbe: Decodable {
    var schemaVersion: Int?
    var mediaType: String?
    var hasManifests: Bool
    var hasLayers: Bool
    var hasConfig: Bool

    enum CodingKeys: String, CodingKey {
        case schemaVersion, mediaType, manifests, layers, config
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try? container.decodeIfPresent(Int.self, forKey: .schemaVersion)
        mediaType = try? container.decodeIfPresent(String.self, forKey: .mediaType)
        hasManifests = container.contains(.manifests)
        hasLayers = container.contains(.layers)
        hasConfig = container.contains(.config)
    }

    var detectedMediaType: MediaType? {
        if let mediaType, !mediaType.isEmpty {
            return MediaType(rawValue: mediaType)
        }
        if hasManifests {
            return .ociIndex
        }
        if hasLayers {
            return .ociManifest
        }
        if schemaVersion == 1 {
            return .dockerManifestV1Signed
        }
        return nil
    }
}
