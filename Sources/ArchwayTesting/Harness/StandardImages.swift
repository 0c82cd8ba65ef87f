import Foundation

/// The images every real-software test can count on, pushed by ``seed(_:)``:
///
/// | reference | what |
/// |---|---|
/// | `test/single:amd64` | OCI image, linux/amd64 |
/// | `test/single:arm64` | OCI image, linux/arm64/v8 |
/// | `test/multi:1.0` | OCI index: linux/amd64 + linux/arm64/v8 (children by digest) |
/// | `test/dockerlist:1.0` | Docker manifest list: two Docker v2s2 images, linux/amd64 + linux/arm64/v8 |
/// | `test/docker:1.0` | Docker v2s2 image, linux/amd64 |
/// | `library/busybox:1` | OCI index: linux/amd64 + linux/arm64/v8 (a Docker Hub-style name) |
///
/// Every image has its own layer payload, so no two manifests share a digest.
public struct StandardImages: Sendable, Hashable {
    /// `127.0.0.1:PORT` of the registry they were pushed to.
    public let registryHost: String
    public let singleAMD64: PushedImage
    public let singleARM64: PushedImage
    public let multi: PushedIndex
    public let dockerList: PushedIndex
    public let docker: PushedImage
    public let busybox: PushedIndex

    /// `test/multi`'s amd64 child.
    public var multiAMD64: PushedImage { multi.children[0] }
    /// `test/multi`'s arm64/v8 child.
    public var multiARM64: PushedImage { multi.children[1] }
    public var dockerListAMD64: PushedImage { dockerList.children[0] }
    public var dockerListARM64: PushedImage { dockerList.children[1] }
    public var busyboxAMD64: PushedImage { busybox.children[0] }
    public var busyboxARM64: PushedImage { busybox.children[1] }

    /// Pushes the standard images to `registry`.
    public static func seed(_ registry: UpstreamRegistry) async throws -> StandardImages {
        try await seed(to: RegistryUploader(baseURL: registry.url), registryHost: registry.host)
    }

    /// Pushes the standard images through `uploader`.
    public static func seed(to uploader: RegistryUploader, registryHost: String) async throws -> StandardImages {
        let amd64 = ImagePlatform.linuxAMD64
        let arm64 = ImagePlatform.linuxARM64

        let singleAMD64 = try await ImageBuilder.pushImage(
            to: uploader, repository: "test/single", tag: "amd64", platform: amd64, format: .oci,
            layerPayload: "test/single:amd64 linux/amd64"
        )
        let singleARM64 = try await ImageBuilder.pushImage(
            to: uploader, repository: "test/single", tag: "arm64", platform: arm64, format: .oci,
            layerPayload: "test/single:arm64 linux/arm64/v8"
        )
        let multi = try await pushIndex(uploader, repository: "test/multi", tag: "1.0", format: .oci, [amd64, arm64])
        let dockerList = try await pushIndex(uploader, repository: "test/dockerlist", tag: "1.0", format: .docker, [amd64, arm64])
        let docker = try await ImageBuilder.pushImage(
            to: uploader, repository: "test/docker", tag: "1.0", platform: amd64, format: .docker,
            layerPayload: "test/docker:1.0 linux/amd64"
        )
        let busybox = try await pushIndex(uploader, repository: "library/busybox", tag: "1", format: .oci, [amd64, arm64])
        return StandardImages(
            registryHost: registryHost, singleAMD64: singleAMD64, singleARM64: singleARM64, multi: multi,
            dockerList: dockerList, docker: docker, busybox: busybox
        )
    }

    private static func pushIndex(
        _ uploader: RegistryUploader, repository: String, tag: String, format: ImageFormat, _ platforms: [ImagePlatform]
    ) async throws -> PushedIndex {
        var children: [PushedImage] = []
        for platform in platforms {
            children.append(
                try await ImageBuilder.pushImage(
                    to: uploader, repository: repository, tag: nil, platform: platform, format: format,
                    layerPayload: "\(repository):\(tag) \(platform)"
                ))
        }
        return try await ImageBuilder.pushIndex(to: uploader, repository: repository, tag: tag, children: children, format: format)
    }
}
