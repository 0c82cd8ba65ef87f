import Foundation

/// The platform fields of an image configuration blob, which is all Archway reads of it.
///
/// Other fields (`config`, `rootfs`, `history`) are ignored when decoding, so this type is a
/// view of a config, never a way to rewrite one.
public struct ImageConfig: Hashable, Sendable, Codable {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    public init(
        architecture: String,
        os: String,
        variant: String? = nil,
        osVersion: String? = nil,
        osFeatures: [String]? = nil
    ) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.osVersion = osVersion
        self.osFeatures = osFeatures
    }

    enum CodingKeys: String, CodingKey {
        case architecture
        case os
        case variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    /// The platform the config declares, as written (not normalized).
    public var platform: Platform {
        Platform(os: os, architecture: architecture, variant: variant, osVersion: osVersion, osFeatures: osFeatures)
    }

    /// Decodes a config blob; `MANIFEST_INVALID` when it is not JSON or lacks `os` or `architecture`.
    public static func decode(_ bytes: Data) throws(RegistryError) -> ImageConfig {
        do {
            return try JSONDecoder().decode(ImageConfig.self, from: bytes)
        } catch {
            throw RegistryError(.manifestInvalid, "image config is invalid: \(DecodingFailure.describe(error))")
        }
    }
}
