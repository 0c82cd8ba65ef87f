import Foundation
import OCI
import Testing

struct ManifestTests {
    @Test func trustedInitComputesTheDigest() {
        let bytes = Fixtures.data(Fixtures.ociManifest)
        let manifest = Manifest(bytes: bytes, mediaType: .ociManifest)
        #expect(manifest.bytes == bytes)
        #expect(manifest.digest == Digest.sha256(bytes))
        #expect(manifest.descriptor == Descriptor(mediaType: .ociManifest, digest: Digest.sha256(bytes), size: Int64(bytes.count)))
        #expect(manifest.size == Int64(bytes.count))
    }

    @Test(arguments: [
        (Fixtures.ociManifest, MediaType.ociManifest),
        (Fixtures.ociManifestWithoutMediaType, .ociManifest),
        (Fixtures.dockerManifest, .dockerManifest),
        (Fixtures.ociIndex, .ociIndex),
        (Fixtures.ociIndexWithoutMediaType, .ociIndex),
        (Fixtures.dockerManifestList, .dockerManifestList),
        (Fixtures.schema1, .dockerManifestV1Signed),
        (#"{"schemaVersion": 2, "mediaType": "", "manifests": []}"#, .ociIndex),
    ])
    func detectsTheMediaTypeWhenNoneIsGiven(json: String, expected: MediaType) throws {
        let manifest = try Manifest(bytes: Fixtures.data(json), mediaType: nil, expected: nil)
        #expect(manifest.mediaType == expected)
    }

    @Test(arguments: [
        (MediaType.json, Fixtures.dockerManifest, MediaType.dockerManifest),
        (.octetStream, Fixtures.ociIndexWithoutMediaType, .ociIndex),
        ("text/plain", Fixtures.ociManifest, .ociManifest),
        (.ociIndex, Fixtures.ociIndex, .ociIndex),
        (.dockerManifest, Fixtures.dockerManifest, .dockerManifest),
    ])
    func aGivenTypeWinsUnlessGeneric(given: MediaType, json: String, expected: MediaType) throws {
        let manifest = try Manifest(bytes: Fixtures.data(json), mediaType: given, expected: nil)
        #expect(manifest.mediaType == expected)
    }

    @Test(arguments: [
        "", "not json", "[]", "\"string\"", "42", "null", "{", "{\"schemaVersion\": 2}\0garbage", "\u{FEFF}",
    ])
    func refusesNonObjects(text: String) {
        let error = #expect(throws: RegistryError.self) {
            try Manifest(bytes: Fixtures.data(text), mediaType: .ociManifest, expected: nil)
        }
        #expect(error?.code == .manifestInvalid)
    }

    /// What is not a manifest of the type it is served as is never cached or served as one.
    @Test(arguments: [
        (MediaType.json, "{}"),  // an internal service's JSON behind a redirect
        (.json, #"{"status":"ok","instance-id":"i-0123"}"#),
        ("application/vnd.example.custom+json", #"{"mediaType": "application/vnd.example.custom+json"}"#),
        ("text/html", "{}"),
        (.dockerManifest, Fixtures.ociManifest),  // the body says OCI, the Content-Type Docker
        (.ociIndex, Fixtures.ociManifest),
        (.ociManifest, #"{"schemaVersion": 2, "manifests": []}"#),  // an index's shape served as an image
        (.ociIndex, #"{"schemaVersion": 2, "manifests": {"not": "a list"}}"#),
        (.dockerManifestV1Signed, #"{"schemaVersion": 2}"#),
    ])
    func refusesWhatIsNotAManifestOfItsType(given: MediaType, json: String) {
        let error = #expect(throws: RegistryError.self) {
            try Manifest(bytes: Fixtures.data(json), mediaType: given, expected: nil)
        }
        #expect(error?.code == .manifestInvalid)
    }

    @Test(arguments: ["{}", #"{"schemaVersion": 2}"#, #"{"schemaVersion": 3, "config": {}}"#])
    func refusesUndetectableTypes(text: String) {
        let error = #expect(throws: RegistryError.self) {
            try Manifest(bytes: Fixtures.data(text), mediaType: nil, expected: nil)
        }
        #expect(error?.code == .manifestInvalid)
    }

    @Test func refusesOversizeManifests() {
        var bytes = Data("{\"a\":\"".utf8)
        bytes.append(Data(repeating: UInt8(ascii: "x"), count: Manifest.maximumSize))
        bytes.append(Data("\"}".utf8))
        let error = #expect(throws: RegistryError.self) {
            try Manifest(bytes: bytes, mediaType: .ociManifest, expected: nil)
        }
        #expect(error?.code == .manifestInvalid)
        #expect(error?.message.contains("4194304") == true)
        #expect(Manifest.maximumSize == 4 * 1024 * 1024)
    }

    @Test func verifiesTheExpectedDigest() throws {
        let bytes = Fixtures.data(Fixtures.ociIndex)
        let digest = Digest.sha256(bytes)
        #expect(try Manifest(bytes: bytes, mediaType: nil, expected: digest).digest == digest)

        let wrong = Digest.sha256(Data("something else".utf8))
        let error = #expect(throws: RegistryError.self) {
            try Manifest(bytes: bytes, mediaType: .ociIndex, expected: wrong)
        }
        #expect(error?.code == .digestInvalid)
        #expect(error?.message.contains(wrong.description) == true)
        #expect(error?.message.contains(digest.description) == true)
    }

    @Test func decodesImageManifests() throws {
        let manifest = try Manifest(bytes: Fixtures.data(Fixtures.ociManifest), mediaType: nil, expected: nil)
        guard case .image(let image) = try manifest.decoded() else {
            Issue.record("expected an image manifest")
            return
        }
        #expect(image.schemaVersion == 2)
        #expect(image.mediaType == .ociManifest)
        #expect(image.config.digest == Fixtures.configDigest)
        #expect(image.layers.count == 1)
        #expect(image.layers[0].urls == ["https://example.com/layer"])
        #expect(image.annotations?["org.opencontainers.image.created"] == "2024-01-01T00:00:00Z")
    }

    @Test func decodesIndexes() throws {
        let manifest = try Manifest(bytes: Fixtures.data(Fixtures.dockerManifestList), mediaType: nil, expected: nil)
        guard case .index(let index) = try manifest.decoded() else {
            Issue.record("expected an index")
            return
        }
        #expect(index.mediaType == .dockerManifestList)
        #expect(index.manifests.first?.platform?.osVersion == "10.0.17763.5329")
    }

    @Test func decidesUnknownTypesByShape() throws {
        let index = Manifest(bytes: Fixtures.data(Fixtures.ociIndexWithoutMediaType), mediaType: .json)
        guard case .index = try index.decoded() else {
            Issue.record("expected an index")
            return
        }
        let image = Manifest(bytes: Fixtures.data(Fixtures.ociManifestWithoutMediaType), mediaType: "application/x-custom")
        guard case .image = try image.decoded() else {
            Issue.record("expected an image manifest")
            return
        }
    }

    @Test(arguments: [
        (Fixtures.schema1, MediaType.dockerManifestV1Signed, "neither"),
        ("{}", MediaType.ociIndex, "missing field"),
        (#"{"schemaVersion": 2}"#, MediaType.ociIndex, "missing field manifests"),
        (#"{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "sha256:abc", "size": 1}]}"#, .ociIndex, "manifests[0].digest"),
        (#"{"schemaVersion": 2, "config": 1, "layers": []}"#, .ociManifest, "config"),
        (#"{"schemaVersion": "2", "manifests": []}"#, .ociIndex, "schemaVersion"),
        ("not json", .ociManifest, "not valid JSON"),
    ])
    func decodingFailuresAreManifestInvalid(json: String, type: MediaType, reason: String) {
        let manifest = Manifest(bytes: Fixtures.data(json), mediaType: type)
        let error = #expect(throws: RegistryError.self) { try manifest.decoded() }
        #expect(error?.code == .manifestInvalid)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }
}
