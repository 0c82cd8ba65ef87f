import Foundation

/// Reading image documents (index, manifest, config) that a client wrote, to check what it pulled.
public enum ImageDocuments {
    struct Index: Decodable {
        var mediaType: String?
        var manifests: [ManifestDescriptor]
    }

    struct Manifest: Decodable {
        var mediaType: String?
        var config: ManifestDescriptor
        var layers: [ManifestDescriptor]?
    }

    struct Config: Decodable {
        var architecture: String?
        var os: String?
        var variant: String?
    }

    /// Whether the JSON document is an index / manifest list (it has `manifests`).
    public static func isIndex(_ document: Data) -> Bool {
        (try? JSONDecoder().decode(Index.self, from: document)) != nil
    }

    /// The descriptors of an index or manifest list.
    public static func indexEntries(_ document: Data) throws -> [ManifestDescriptor] {
        try JSONDecoder().decode(Index.self, from: document).manifests
    }

    /// The descriptors of an index whose platform serves `platform`, best first (exact variant
    /// first, as containerd orders them).
    public static func entries(_ document: Data, for platform: ImagePlatform) throws -> [ManifestDescriptor] {
        let all = try indexEntries(document)
        let matching = all.filter { entry in
            guard let p = entry.platform else { return false }
            return ImagePlatform(os: p.os, architecture: p.architecture, variant: p.variant).satisfies(platform)
        }
        let wanted = platform.normalized
        return matching.sorted { a, _ in
            guard let p = a.platform else { return false }
            return ImagePlatform(os: p.os, architecture: p.architecture, variant: p.variant).normalized == wanted
        }
    }

    /// The config descriptor of an image manifest.
    public static func configDescriptor(ofManifest document: Data) throws -> ManifestDescriptor {
        try JSONDecoder().decode(Manifest.self, from: document).config
    }

    /// The layer descriptors of an image manifest.
    public static func layerDescriptors(ofManifest document: Data) throws -> [ManifestDescriptor] {
        try JSONDecoder().decode(Manifest.self, from: document).layers ?? []
    }

    /// The platform an image config declares.
    public static func platform(ofConfig document: Data) throws -> ImagePlatform {
        let config = try JSONDecoder().decode(Config.self, from: document)
        guard let architecture = config.architecture else {
            throw HarnessError("config has no architecture: \(String(decoding: document.prefix(500), as: UTF8.self))")
        }
        return ImagePlatform(os: config.os ?? "", architecture: architecture, variant: config.variant)
    }
}

/// What a client stored for one image reference: the top document (index or manifest), the
/// manifest it chose, and that manifest's config.
public struct StoredImage: Sendable, Hashable {
    /// The digest the reference resolved to (an index or a manifest).
    public let digest: String
    /// The index digest, when the reference is an index or manifest list.
    public let indexDigest: String?
    /// The image manifest chosen for the platform (or the reference itself).
    public let manifestDigest: String
    public let manifestBytes: Data
    public let configDigest: String
    public let configBytes: Data
    /// The platform the config declares.
    public let platform: ImagePlatform

    /// The config's `architecture`.
    public var architecture: String { platform.architecture }

    /// Walks from the top document to the config; `fetch` returns a blob by digest, or `nil` when the
    /// store does not have it (a child of another platform that was not pulled).
    static func resolve(
        digest: String,
        platform: ImagePlatform,
        fetch: (String) async throws -> Data?
    ) async throws -> StoredImage {
        guard let top = try await fetch(digest) else { throw HarnessError("\(digest) is not in the store") }
        var manifest: (digest: String, bytes: Data)?
        if ImageDocuments.isIndex(top) {
            for entry in try ImageDocuments.entries(top, for: platform) {
                if let bytes = try await fetch(entry.digest) {
                    manifest = (entry.digest, bytes)
                    break
                }
            }
        } else {
            manifest = (digest, top)
        }
        let config = try configDescriptor(top: top, digest: digest, platform: platform, manifest: manifest)
        return try assemble(
            digest: digest, top: top, manifest: manifest!, configDigest: config.digest, configBytes: try await fetch(config.digest))
    }

    /// ``resolve(digest:platform:fetch:)`` for a store read without suspending (an OCI layout).
    static func resolveSync(digest: String, platform: ImagePlatform, fetch: (String) throws -> Data?) throws -> StoredImage {
        guard let top = try fetch(digest) else { throw HarnessError("\(digest) is not in the store") }
        var manifest: (digest: String, bytes: Data)?
        if ImageDocuments.isIndex(top) {
            for entry in try ImageDocuments.entries(top, for: platform) {
                if let bytes = try fetch(entry.digest) {
                    manifest = (entry.digest, bytes)
                    break
                }
            }
        } else {
            manifest = (digest, top)
        }
        let config = try configDescriptor(top: top, digest: digest, platform: platform, manifest: manifest)
        return try assemble(
            digest: digest, top: top, manifest: manifest!, configDigest: config.digest, configBytes: try fetch(config.digest))
    }

    private static func configDescriptor(
        top: Data, digest: String, platform: ImagePlatform, manifest: (digest: String, bytes: Data)?
    ) throws -> ManifestDescriptor {
        guard let manifest else {
            throw HarnessError("index \(digest) has no stored child for \(platform): \(String(decoding: top, as: UTF8.self))")
        }
        return try ImageDocuments.configDescriptor(ofManifest: manifest.bytes)
    }

    private static func assemble(
        digest: String, top: Data, manifest: (digest: String, bytes: Data), configDigest: String, configBytes: Data?
    ) throws -> StoredImage {
        guard let configBytes else {
            throw HarnessError("config \(configDigest) of \(manifest.digest) is not in the store")
        }
        return StoredImage(
            digest: digest, indexDigest: manifest.digest == digest ? nil : digest,
            manifestDigest: manifest.digest, manifestBytes: manifest.bytes,
            configDigest: configDigest, configBytes: configBytes,
            platform: try ImageDocuments.platform(ofConfig: configBytes)
        )
    }
}
