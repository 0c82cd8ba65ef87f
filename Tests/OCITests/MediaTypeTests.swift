import Foundation
import OCI
import Testing

struct MediaTypeTests {
    @Test(arguments: [
        ("application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.index.v1+json"),
        ("application/json; charset=utf-8", "application/json"),
        ("  Application/VND.Docker.Distribution.Manifest.V2+JSON ; q=0.5", "application/vnd.docker.distribution.manifest.v2+json"),
        ("\tapplication/octet-stream\r\n", "application/octet-stream"),
        ("", ""),
        (";charset=utf-8", ""),
    ])
    func contentTypeDropsParametersAndCase(header: String, expected: String) {
        #expect(MediaType(contentType: header).rawValue == expected)
    }

    @Test(arguments: [
        (MediaType.ociIndex, true, false),
        (.dockerManifestList, true, false),
        (.ociManifest, false, true),
        (.dockerManifest, false, true),
        (.dockerManifestV1Signed, false, false),
        (.ociConfig, false, false),
        (.dockerConfig, false, false),
        (.ociLayerGzip, false, false),
        (.json, false, false),
        ("APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON", false, false),
    ])
    func classifiesManifestTypes(type: MediaType, isIndex: Bool, isImageManifest: Bool) {
        #expect(type.isIndex == isIndex)
        #expect(type.isImageManifest == isImageManifest)
        #expect(type.isManifest == (isIndex || isImageManifest))
    }

    @Test func constantsAreTheSpecStrings() {
        #expect(MediaType.ociIndex.rawValue == "application/vnd.oci.image.index.v1+json")
        #expect(MediaType.ociManifest.rawValue == "application/vnd.oci.image.manifest.v1+json")
        #expect(MediaType.ociConfig.rawValue == "application/vnd.oci.image.config.v1+json")
        #expect(MediaType.ociLayer.rawValue == "application/vnd.oci.image.layer.v1.tar")
        #expect(MediaType.ociLayerGzip.rawValue == "application/vnd.oci.image.layer.v1.tar+gzip")
        #expect(MediaType.dockerManifestList.rawValue == "application/vnd.docker.distribution.manifest.list.v2+json")
        #expect(MediaType.dockerManifest.rawValue == "application/vnd.docker.distribution.manifest.v2+json")
        #expect(MediaType.dockerConfig.rawValue == "application/vnd.docker.container.image.v1+json")
        #expect(MediaType.dockerLayerGzip.rawValue == "application/vnd.docker.image.rootfs.diff.tar.gzip")
        #expect(MediaType.dockerManifestV1Signed.rawValue == "application/vnd.docker.distribution.manifest.v1+prettyjws")
        #expect(MediaType.json.rawValue == "application/json")
        #expect(MediaType.octetStream.rawValue == "application/octet-stream")
        #expect(Set(MediaType.manifestTypes) == [.ociIndex, .ociManifest, .dockerManifestList, .dockerManifest])
        #expect(MediaType.manifestTypes.count == 4)
        #expect(MediaType.ociIndex.description == MediaType.ociIndex.rawValue)
    }

    @Test func codableAsASingleString() throws {
        let json = try JSONEncoder().encode([MediaType.ociIndex])
        let strings = try JSONDecoder().decode([String].self, from: json)
        #expect(strings == ["application/vnd.oci.image.index.v1+json"])
        #expect(try JSONDecoder().decode([MediaType].self, from: json) == [.ociIndex])
    }

    @Test(arguments: [
        (["application/a, application/b;q=0.9", "application/c"], ["application/a", "application/b", "application/c"]),
        (["application/a", "APPLICATION/A", " , ,"], ["application/a"]),
        ([], []),
        (["*/*"], ["*/*"]),
    ])
    func parsesAcceptHeaders(values: [String], expected: [String]) {
        #expect(MediaType.parseAccept(values).map(\.rawValue) == expected)
    }
}

@Suite struct ManifestAcceptMemoryTests {
    @Test func aRememberedReductionIsTheSameAndMadeUpValuesDoNotChangeIt() {
        let containerd = ["application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, */*;q=0.8"]
        let first = MediaType.manifestAccept(containerd)
        // Many made-up values in between: the memory starts over, the answers stay right.
        for n in 0..<200 { #expect(MediaType.manifestAccept(["application/x-made-up-\(n)"]).isEmpty) }
        #expect(MediaType.manifestAccept(containerd) == first)
        #expect(first == MediaType.servedManifestTypes.map(\.rawValue))
        // One header per type (skopeo) and one comma-joined header (containerd) are different keys, same answer.
        let split = MediaType.manifestAccept(["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"])
        let joined = MediaType.manifestAccept(["application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"])
        #expect(split == joined && split.count == 2)
    }
}
