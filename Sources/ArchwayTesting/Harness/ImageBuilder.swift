import Foundation
import LayerInspection

/// `os/architecture[/variant]`, as in an image index or a config.
public struct ImagePlatform: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch` or `os/arch/variant`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    public init(stringLiteral value: String) {
        guard let platform = ImagePlatform(parsing: value) else { preconditionFailure("not a platform: \(value)") }
        self = platform
    }

    public static let linuxAMD64 = ImagePlatform(os: "linux", architecture: "amd64")
    public static let linuxARM64 = ImagePlatform(os: "linux", architecture: "arm64", variant: "v8")

    /// `linux/arm64/v8`
    public var description: String {
        [os, architecture, variant].compactMap { $0 }.joined(separator: "/")
    }

    /// containerd's normalization: `aarch64`->`arm64`, arm64 `v8`/`8` -> no variant, `x86_64`->`amd64`,
    /// `armhf`->`arm/v7`, `armel`->`arm/v6`, arm without variant -> `v7`, `i386`->`386`.
    public var normalized: ImagePlatform {
        var result = ImagePlatform(os: os.lowercased(), architecture: architecture.lowercased(), variant: variant?.lowercased())
        switch result.architecture {
        case "aarch64", "arm64":
            result.architecture = "arm64"
            if result.variant == "v8" || result.variant == "8" { result.variant = nil }
        case "x86_64", "x86-64", "amd64":
            result.architecture = "amd64"
            result.variant = nil
        case "i386", "386":
            result.architecture = "386"
        case "armhf":
            result.architecture = "arm"
            result.variant = "v7"
        case "armel":
            result.architecture = "arm"
            result.variant = "v6"
        case "arm":
            if result.variant == nil || result.variant == "7" { result.variant = "v7" }
            if result.variant == "6" { result.variant = "v6" }
            if result.variant == "5" { result.variant = "v5" }
        default:
            break
        }
        if result.variant == "" { result.variant = nil }
        return result
    }

    /// Whether an image of platform `self` serves a client asking for `requested`
    /// (after normalization; a request without a variant accepts any variant).
    public func satisfies(_ requested: ImagePlatform) -> Bool {
        let mine = normalized
        let wanted = requested.normalized
        guard mine.os == wanted.os, mine.architecture == wanted.architecture else { return false }
        return wanted.variant == nil || mine.variant == wanted.variant
    }

    /// The platform of this machine (`linux/amd64`, `linux/arm64`, ...).
    public static var host: ImagePlatform {
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return ImagePlatform(os: "linux", architecture: machine).normalized
    }
}

/// Which family of media types an image or index uses.
public enum ImageFormat: String, Sendable, Hashable {
    /// OCI image manifest / OCI image index.
    case oci
    /// Docker image manifest v2 schema 2 / Docker manifest list.
    case docker

    public var manifestMediaType: String { self == .oci ? MediaTypes.ociManifest : MediaTypes.dockerManifest }
    public var indexMediaType: String { self == .oci ? MediaTypes.ociIndex : MediaTypes.dockerManifestList }
    public var configMediaType: String { self == .oci ? MediaTypes.ociConfig : MediaTypes.dockerConfig }
}

/// A descriptor in a manifest or index.
public struct ManifestDescriptor: Sendable, Hashable, Codable {
    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?

    public struct Platform: Sendable, Hashable, Codable {
        public var architecture: String
        public var os: String
        public var variant: String?

        public init(_ platform: ImagePlatform) {
            architecture = platform.architecture
            os = platform.os
            variant = platform.variant
        }
    }

    public init(mediaType: String, digest: String, size: Int64, platform: ImagePlatform? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform.map(Platform.init)
        self.annotations = annotations
    }
}

/// An image manifest (with its config and layers) pushed by ``ImageBuilder``.
public struct PushedImage: Sendable, Hashable {
    public let repository: String
    /// The tag it was pushed under, or `nil` when pushed by digest only.
    public let tag: String?
    public let manifestDigest: String
    public let manifestBytes: Data
    public let mediaType: String
    public let configDigest: String
    public let configBytes: Data
    public let layerDigests: [String]
    public let layers: [BlobRef]
    /// The uncompressed layer tars' digests (the config's `rootfs.diff_ids`).
    public let diffIDs: [String]
    /// `linux/arm64/v8`
    public let platform: String
    public let imagePlatform: ImagePlatform
    public let format: ImageFormat
    /// The text inside the layer's one file.
    public let layerPayload: String
    /// The blobs as pushed (config and layers), to copy the image into another repository.
    public let blobs: [Data]

    /// The size of the manifest bytes.
    public var size: Int64 { Int64(manifestBytes.count) }

    /// A descriptor of this manifest for an index.
    public var descriptor: ManifestDescriptor {
        ManifestDescriptor(mediaType: mediaType, digest: manifestDigest, size: size, platform: imagePlatform)
    }
}

/// An image index or Docker manifest list pushed by ``ImageBuilder``.
public struct PushedIndex: Sendable, Hashable {
    public let repository: String
    public let tag: String?
    public let digest: String
    public let bytes: Data
    public let mediaType: String
    public let children: [PushedImage]

    public var size: Int64 { Int64(bytes.count) }

    /// The child for `platform` (normalized match, see ``ImagePlatform/satisfies(_:)``).
    public func child(for platform: ImagePlatform) -> PushedImage? {
        children.first { $0.imagePlatform.satisfies(platform) }
    }
}

/// Builds small, real, deterministic test images in code and pushes them byte for byte.
public enum ImageBuilder {
    /// Pushes a one-layer image: the layer is a ustar archive with one file `hello-<arch>.txt`
    /// holding `layerPayload` (default `hello from <platform>`). OCI images get a gzip layer
    /// (`application/vnd.oci.image.layer.v1.tar+gzip`), or an uncompressed one
    /// (`application/vnd.oci.image.layer.v1.tar`) with `compressLayer: false`; Docker images get
    /// `application/vnd.docker.image.rootfs.diff.tar.gzip`. With `tag: nil` the manifest is
    /// pushed by digest only (as the children of an index are).
    @discardableResult
    public static func pushImage(
        to uploader: RegistryUploader,
        repository: String,
        tag: String?,
        platform: ImagePlatform,
        format: ImageFormat,
        layerPayload: String? = nil,
        compressLayer: Bool = true
    ) async throws -> PushedImage {
        let payload = layerPayload ?? "hello from \(platform)"
        let fileName = "hello-" + [platform.architecture, platform.variant].compactMap { $0 }.joined(separator: "-") + ".txt"
        let tar = Archives.tar(fileNamed: fileName, contents: Data((payload + "\n").utf8))
        let diffID = sha256Digest(tar)
        let layerMediaType: String
        let layerBytes: Data
        switch format {
        case .oci:
            layerMediaType = compressLayer ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer
            layerBytes = compressLayer ? Archives.gzip(tar) : tar
        case .docker:
            layerMediaType = MediaTypes.dockerLayerGzip
            layerBytes = Archives.gzip(tar)
        }
        let configBytes = try self.configBytes(platform: platform, diffIDs: [diffID])
        let layer = try await uploader.pushBlob(repository: repository, data: layerBytes)
        let config = try await uploader.pushBlob(repository: repository, data: configBytes)
        let manifestBytes = try self.manifestBytes(
            format: format,
            config: ManifestDescriptor(mediaType: format.configMediaType, digest: config.digest, size: config.size),
            layers: [ManifestDescriptor(mediaType: layerMediaType, digest: layer.digest, size: layer.size)]
        )
        let digest = try await uploader.pushManifest(
            repository: repository, reference: tag ?? sha256Digest(manifestBytes),
            bytes: manifestBytes, mediaType: format.manifestMediaType
        )
        return PushedImage(
            repository: repository, tag: tag, manifestDigest: digest, manifestBytes: manifestBytes,
            mediaType: format.manifestMediaType, configDigest: config.digest, configBytes: configBytes,
            layerDigests: [layer.digest], layers: [layer], diffIDs: [diffID], platform: platform.description,
            imagePlatform: platform, format: format, layerPayload: payload, blobs: [configBytes, layerBytes]
        )
    }

    /// ``pushImage(to:repository:tag:platform:format:layerPayload:compressLayer:)`` with the
    /// platform as a tuple.
    @discardableResult
    public static func pushImage(
        to uploader: RegistryUploader,
        repository: String,
        tag: String?,
        platform: (os: String, architecture: String, variant: String?),
        format: ImageFormat,
        layerPayload: String? = nil,
        compressLayer: Bool = true
    ) async throws -> PushedImage {
        try await pushImage(
            to: uploader, repository: repository, tag: tag,
            platform: ImagePlatform(os: platform.os, architecture: platform.architecture, variant: platform.variant),
            format: format, layerPayload: layerPayload, compressLayer: compressLayer
        )
    }

    /// Pushes an OCI image index (`.oci`) or a Docker manifest list (`.docker`) of `children`,
    /// each with its platform. Children pushed into another repository are first copied (blobs and
    /// manifest, by digest) into `repository`. `extraManifests` are appended as they are (e.g. an
    /// attestation entry with platform `unknown/unknown`).
    @discardableResult
    public static func pushIndex(
        to uploader: RegistryUploader,
        repository: String,
        tag: String?,
        children: [PushedImage],
        format: ImageFormat,
        extraManifests: [ManifestDescriptor] = []
    ) async throws -> PushedIndex {
        var placed: [PushedImage] = []
        for child in children {
            placed.append(child.repository == repository ? child : try await copy(child, to: uploader, repository: repository, tag: nil))
        }
        let bytes = try indexBytes(format: format, manifests: placed.map(\.descriptor) + extraManifests)
        let digest = try await uploader.pushManifest(
            repository: repository, reference: tag ?? sha256Digest(bytes), bytes: bytes, mediaType: format.indexMediaType
        )
        return PushedIndex(
            repository: repository, tag: tag, digest: digest, bytes: bytes, mediaType: format.indexMediaType, children: placed
        )
    }

    /// Pushes an image's blobs and manifest (byte for byte) into another repository or registry.
    @discardableResult
    public static func copy(_ image: PushedImage, to uploader: RegistryUploader, repository: String, tag: String?) async throws
        -> PushedImage
    {
        for blob in image.blobs { try await uploader.pushBlob(repository: repository, data: blob) }
        let digest = try await uploader.pushManifest(
            repository: repository, reference: tag ?? image.manifestDigest, bytes: image.manifestBytes, mediaType: image.mediaType
        )
        return PushedImage(
            repository: repository, tag: tag, manifestDigest: digest, manifestBytes: image.manifestBytes,
            mediaType: image.mediaType, configDigest: image.configDigest, configBytes: image.configBytes,
            layerDigests: image.layerDigests, layers: image.layers, diffIDs: image.diffIDs, platform: image.platform,
            imagePlatform: image.imagePlatform, format: image.format, layerPayload: image.layerPayload, blobs: image.blobs
        )
    }

    /// A layer of a test image: a tar stream and how it is compressed.
    public struct Layer: Sendable {
        public enum Compression: Sendable { case gzip, zstd, none }
        public var tar: Data
        public var compression: Compression

        /// Bytes given as they are (a hand-made stream), when not nil.
        var raw: Data?

        public init(_ tar: TarWriter, _ compression: Compression = .gzip) {
            self.tar = tar.finished
            self.compression = compression
        }

        /// A gzip layer whose bytes are `raw` (its `tar` only names its diff ID).
        public init(raw: Data, tar: Data) {
            self.tar = tar
            self.compression = .gzip
            self.raw = raw
        }

        public var bytes: Data {
            if let raw { return raw }
            switch compression {
            case .gzip: return LayerCompressor.gzip(tar)
            case .zstd: return LayerCompressor.zstd(tar)
            case .none: return tar
            }
        }

        public var mediaType: String {
            switch compression {
            case .gzip: MediaTypes.ociLayerGzip
            case .zstd: MediaTypes.ociLayerZstd
            case .none: MediaTypes.ociLayer
            }
        }
    }

    /// Pushes an OCI image of these layers (bottom first) whose config says `platform` and runs
    /// `entrypoint` with `cmd`: what a scan of its binaries follows.
    @discardableResult
    public static func pushImage(
        to uploader: RegistryUploader, repository: String, tag: String?, platform: ImagePlatform, layers: [Layer],
        entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil, workingDir: String? = nil
    ) async throws -> PushedImage {
        let blobs = layers.map(\.bytes)
        var refs: [BlobRef] = []
        for blob in blobs { refs.append(try await uploader.pushBlob(repository: repository, data: blob)) }
        let diffIDs = layers.map { sha256Digest($0.tar) }
        let configBytes = try encode(
            ConfigDocument(
                architecture: platform.architecture, os: platform.os, variant: platform.variant,
                rootfs: .init(type: "layers", diffIDs: diffIDs),
                config: ImageExecution(entrypoint: entrypoint ?? [], cmd: cmd ?? [], env: env ?? [], workingDir: workingDir ?? "")
            ))
        let config = try await uploader.pushBlob(repository: repository, data: configBytes)
        let manifestBytes = try self.manifestBytes(
            format: .oci, config: ManifestDescriptor(mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size),
            layers: zip(layers, refs).map { ManifestDescriptor(mediaType: $0.mediaType, digest: $1.digest, size: $1.size) }
        )
        let digest = try await uploader.pushManifest(
            repository: repository, reference: tag ?? sha256Digest(manifestBytes), bytes: manifestBytes, mediaType: MediaTypes.ociManifest)
        return PushedImage(
            repository: repository, tag: tag, manifestDigest: digest, manifestBytes: manifestBytes, mediaType: MediaTypes.ociManifest,
            configDigest: config.digest, configBytes: configBytes, layerDigests: refs.map(\.digest), layers: refs, diffIDs: diffIDs,
            platform: platform.description, imagePlatform: platform, format: .oci, layerPayload: "", blobs: [configBytes] + blobs
        )
    }

    // MARK: - Documents

    /// A config: `architecture`, `os`, optional `variant`, `rootfs.diff_ids`, and an empty `config`.
    public static func configBytes(platform: ImagePlatform, diffIDs: [String]) throws -> Data {
        try encode(
            ConfigDocument(
                architecture: platform.architecture, os: platform.os, variant: platform.variant,
                rootfs: .init(type: "layers", diffIDs: diffIDs), config: ImageExecution()
            ))
    }

    /// An image manifest (schemaVersion 2) of the format's media type.
    public static func manifestBytes(format: ImageFormat, config: ManifestDescriptor, layers: [ManifestDescriptor]) throws -> Data {
        try encode(ManifestDocument(schemaVersion: 2, mediaType: format.manifestMediaType, config: config, layers: layers))
    }

    /// An OCI image index or Docker manifest list (schemaVersion 2).
    public static func indexBytes(format: ImageFormat, manifests: [ManifestDescriptor]) throws -> Data {
        try encode(IndexDocument(schemaVersion: 2, mediaType: format.indexMediaType, manifests: manifests))
    }

    private static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    private struct ConfigDocument: Encodable {
        struct RootFS: Encodable {
            var type: String
            var diffIDs: [String]

            enum CodingKeys: String, CodingKey {
                case type
                case diffIDs = "diff_ids"
            }
        }
        var architecture: String
        var os: String
        var variant: String?
        var rootfs: RootFS
        var config: ImageExecution
    }

    private struct ManifestDocument: Encodable {
        var schemaVersion: Int
        var mediaType: String
        var config: ManifestDescriptor
        var layers: [ManifestDescriptor]
    }

    private struct IndexDocument: Encodable {
        var schemaVersion: Int
        var mediaType: String
        var manifests: [ManifestDescriptor]
    }
}
