import Foundation
import OCI
import Testing

struct DescriptorTests {
    static let digest = Digest.sha256(Data("x".utf8))

    @Test(
        arguments: [
            (nil, nil, false),
            (["vnd.docker.reference.type": "attestation-manifest"], nil, true),
            (["vnd.docker.reference.type": "something-else"], nil, false),
            (nil, Platform(os: "unknown", architecture: "unknown"), true),
            (nil, Platform(os: "linux", architecture: "unknown"), false),
            (nil, Platform(os: "linux", architecture: "amd64"), false),
            (["vnd.docker.reference.type": "attestation-manifest"], Platform(os: "linux", architecture: "amd64"), true),
        ] as [([String: String]?, Platform?, Bool)])
    func recognizesAttestations(annotations: [String: String]?, platform: Platform?, isAttestation: Bool) {
        let descriptor = Descriptor(
            mediaType: .ociManifest, digest: Self.digest, size: 1, annotations: annotations, platform: platform
        )
        #expect(descriptor.isAttestation == isAttestation)
    }

    @Test func encodesOnlyPresentFields() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bare = Descriptor(mediaType: .ociConfig, digest: Self.digest, size: 42)
        #expect(
            String(decoding: try encoder.encode(bare), as: UTF8.self)
                == #"{"digest":"\#(Self.digest)","mediaType":"application/vnd.oci.image.config.v1+json","size":42}"#
        )
        let full = Descriptor(
            mediaType: .ociManifest, digest: Self.digest, size: Int64.max, urls: ["u"], annotations: ["k": "v"],
            platform: Platform(os: "linux", architecture: "arm64", variant: "v8"), artifactType: "application/x"
        )
        #expect(try JSONDecoder().decode(Descriptor.self, from: try encoder.encode(full)) == full)
    }

    @Test(arguments: [
        #"{"digest":"sha256:abc","mediaType":"x","size":1}"#,
        #"{"mediaType":"x","size":1}"#,
        #"{"digest":"\#(digest)","mediaType":"x"}"#,
        #"{"digest":"\#(digest)","mediaType":"x","size":"1"}"#,
        #"{"digest":"\#(digest)","mediaType":"x","size":1e400}"#,
    ])
    func refusesInvalidDescriptors(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Descriptor.self, from: Data(json.utf8)) }
    }
}
