import Foundation
import OCI

/// Small manifests and configs shared by the tests.
enum Fixtures {
    static let configDigest = Digest.sha256(Data("config".utf8))
    static let layerDigest = Digest.sha256(Data("layer".utf8))
    static let childDigest = Digest.sha256(Data("child".utf8))

    static let ociManifest = """
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "\(configDigest)", "size": 6},
          "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "\(layerDigest)", "size": 5,
             "urls": ["https://example.com/layer"], "annotations": {"a": "b"}}
          ],
          "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
        }
        """

    static let ociManifestWithoutMediaType = """
        {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
         "digest": "\(configDigest)", "size": 6}, "layers": []}
        """

    static let dockerManifest = """
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "\(configDigest)", "size": 6},
         "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "\(layerDigest)", "size": 5}]}
        """

    static let ociIndex = """
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.index.v1+json",
          "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(childDigest)", "size": 100,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(childDigest)", "size": 100,
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                             "vnd.docker.reference.digest": "\(childDigest)"}}
          ]
        }
        """

    static let ociIndexWithoutMediaType = """
        {"schemaVersion": 2, "manifests": []}
        """

    static let dockerManifestList = """
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
         "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "\(childDigest)",
         "size": 7, "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5329"}}]}
        """

    static let schema1 = """
        {"schemaVersion": 1, "name": "library/hello", "tag": "latest", "architecture": "amd64",
         "fsLayers": [{"blobSum": "\(layerDigest)"}], "signatures": []}
        """

    static let helmArtifact = """
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "artifactType": "application/vnd.cncf.helm.config.v1+json",
         "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "\(configDigest)", "size": 2},
         "layers": [], "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(childDigest)", "size": 9}}
        """

    static func data(_ text: String) -> Data { Data(text.utf8) }
}
