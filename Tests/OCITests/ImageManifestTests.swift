import Foundation
import OCI
import Testing

struct ImageManifestTests {
    @Test func decodesArtifactsWithSubject() throws {
        let image = try JSONDecoder().decode(ImageManifest.self, from: Fixtures.data(Fixtures.helmArtifact))
        #expect(image.artifactType == "application/vnd.cncf.helm.config.v1+json")
        #expect(image.config.mediaType == .ociEmpty)
        #expect(image.layers.isEmpty)
        #expect(image.subject?.digest == Fixtures.childDigest)
    }

    @Test func roundTrips() throws {
        let image = ImageManifest(
            mediaType: .dockerManifest,
            config: Descriptor(mediaType: .dockerConfig, digest: Fixtures.configDigest, size: 6),
            layers: [Descriptor(mediaType: .dockerLayerGzip, digest: Fixtures.layerDigest, size: 5)]
        )
        #expect(image.schemaVersion == 2)
        #expect(try JSONDecoder().decode(ImageManifest.self, from: try JSONEncoder().encode(image)) == image)
    }

    @Test(arguments: [
        #"{"schemaVersion": 2, "layers": []}"#,
        #"{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:00", "size": 1}, "layers": []}"#,
        #"{"config": {"mediaType": "x", "digest": "\#(Fixtures.configDigest)", "size": 1}, "layers": []}"#,
    ])
    func refusesIncompleteManifests(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ImageManifest.self, from: Data(json.utf8)) }
    }
}
