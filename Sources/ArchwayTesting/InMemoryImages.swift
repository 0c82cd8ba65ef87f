import Foundation
import OCI

/// Small images built in memory, stored into an ``InMemoryUpstream``.
public enum InMemoryImages {
    /// Pushes an OCI image for `platform` (config + one layer) and returns its manifest.
    @discardableResult
    public static func image(
        _ upstream: InMemoryUpstream,
        repository: String,
        tag: String?,
        platform: Platform,
        mediaType: MediaType = .ociManifest,
        layer: Data? = nil
    ) -> Manifest {
        let docker = mediaType == .dockerManifest
        var configJSON = #"{"architecture":"\#(platform.architecture)","os":"\#(platform.os)""#
        if let variant = platform.variant { configJSON += #","variant":"\#(variant)""# }
        configJSON += #","rootfs":{"type":"layers","diff_ids":[]}}"#
        let config = Data(configJSON.utf8)
        let layer = layer ?? Data("layer of \(repository) \(platform)".utf8)
        let configDigest = upstream.addBlob(config)
        let layerDigest = upstream.addBlob(layer)
        let configType = docker ? MediaType.dockerConfig : MediaType.ociConfig
        let layerType = docker ? MediaType.dockerLayerGzip : MediaType.ociLayer
        let json = """
            {"schemaVersion":2,"mediaType":"\(mediaType.rawValue)",\
            "config":{"mediaType":"\(configType.rawValue)","digest":"\(configDigest)","size":\(config.count)},\
            "layers":[{"mediaType":"\(layerType.rawValue)","digest":"\(layerDigest)","size":\(layer.count)}]}
            """
        return upstream.addManifest(repository, tag: tag, Manifest(bytes: Data(json.utf8), mediaType: mediaType))
    }

    /// Pushes an index of the given children (already pushed) and returns it.
    @discardableResult
    public static func index(
        _ upstream: InMemoryUpstream,
        repository: String,
        tag: String?,
        children: [(Manifest, Platform)],
        mediaType: MediaType = .ociIndex
    ) -> Manifest {
        let entries = children.map { manifest, platform in
            var platformJSON = #""architecture":"\#(platform.architecture)","os":"\#(platform.os)""#
            if let variant = platform.variant { platformJSON += #","variant":"\#(variant)""# }
            return """
                {"mediaType":"\(manifest.mediaType.rawValue)","digest":"\(manifest.digest)","size":\(manifest.bytes.count),\
                "platform":{\(platformJSON)}}
                """
        }
        let json = #"{"schemaVersion":2,"mediaType":"\#(mediaType.rawValue)","manifests":[\#(entries.joined(separator: ","))]}"#
        return upstream.addManifest(repository, tag: tag, Manifest(bytes: Data(json.utf8), mediaType: mediaType))
    }
}
