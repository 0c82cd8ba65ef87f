import Foundation
import OCI
import Testing

struct ImageIndexTests {
    @Test func decodesPlatformsAndAttestations() throws {
        let index = try JSONDecoder().decode(ImageIndex.self, from: Fixtures.data(Fixtures.ociIndex))
        #expect(index.mediaType == .ociIndex)
        #expect(index.manifests.map(\.platform?.description) == ["linux/arm64/v8", "unknown/unknown"])
        #expect(index.manifests.map(\.isAttestation) == [false, true])
    }

    @Test func canonicalJSONIsCompactSortedAndStable() throws {
        let index = ImageIndex(
            mediaType: .ociIndex,
            manifests: [
                Descriptor(
                    mediaType: .ociManifest, digest: Fixtures.childDigest, size: 7,
                    annotations: ["z": "1", "a": "2"],
                    platform: Platform(os: "linux", architecture: "arm", variant: "v7")
                )
            ]
        )
        let json = String(decoding: index.canonicalJSON(), as: UTF8.self)
        #expect(
            json
                == #"{"manifests":[{"annotations":{"a":"2","z":"1"},"digest":"\#(Fixtures.childDigest)","#
                + #""mediaType":"application/vnd.oci.image.manifest.v1+json","#
                + #""platform":{"architecture":"arm","os":"linux","variant":"v7"},"size":7}],"#
                + #""mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#
        )
        #expect(index.canonicalJSON() == index.canonicalJSON())
        #expect(try JSONDecoder().decode(ImageIndex.self, from: index.canonicalJSON()) == index)
        let manifest = Manifest(bytes: index.canonicalJSON(), mediaType: .ociIndex)
        #expect(manifest.digest == Digest.sha256(Data(json.utf8)))
    }

    @Test(arguments: [#"{"schemaVersion": 2}"#, #"{"schemaVersion": 2, "manifests": {}}"#, "[]"])
    func refusesIndexesWithoutManifests(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ImageIndex.self, from: Data(json.utf8)) }
    }
}
