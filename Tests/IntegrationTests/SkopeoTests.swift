import ArchwayTesting
import Foundation
import Testing

/// skopeo (containers/image) pulling through the real archway binary from a real docker-registry.
@Suite(.serialized) struct SkopeoTests {
    @Test func copiesSingleImagesIndexesAndManifestListsWithTheUpstreamsDigests() async throws {
        try await withPullThrough { env in
            try await withTemporaryDirectory { directory in
                let source = "docker://\(env.archway.host)/registry.test"

                // A single-arch image, byte for byte (dir: keeps manifests as they came).
                let single = directory.appendingPathComponent("single")
                try await Skopeo.copy(from: "\(source)/test/single:arm64", to: "dir:\(single.path)", arguments: ["--src-tls-verify=false"])
                    .requireSuccess()
                #expect(
                    sha256Digest(try Data(contentsOf: single.appendingPathComponent("manifest.json")))
                        == env.images.singleARM64.manifestDigest)

                // An OCI index with every platform.
                let layout = directory.appendingPathComponent("multi")
                try await Skopeo.copy(
                    from: "\(source)/test/multi:1.0", to: "oci:\(layout.path):1.0", arguments: ["--all", "--src-tls-verify=false"]
                ).requireSuccess()
                #expect(try Skopeo.layoutEntry(layout, tag: "1.0").digest == env.images.multi.digest)
                for child in env.images.multi.children {
                    let blob = layout.appendingPathComponent("blobs/sha256/\(child.manifestDigest.dropFirst(7))")
                    #expect(FileManager.default.fileExists(atPath: blob.path), "child \(child.platform) was not copied")
                }

                // A Docker manifest list with every platform: the list and each child unchanged.
                let list = directory.appendingPathComponent("list")
                try await Skopeo.copy(
                    from: "\(source)/test/dockerlist:1.0", to: "dir:\(list.path)", arguments: ["--all", "--src-tls-verify=false"]
                )
                .requireSuccess()
                #expect(sha256Digest(try Data(contentsOf: list.appendingPathComponent("manifest.json"))) == env.images.dockerList.digest)
                for child in env.images.dockerList.children {
                    let path = list.appendingPathComponent("\(child.manifestDigest.dropFirst(7)).manifest.json")
                    #expect(sha256Digest(try Data(contentsOf: path)) == child.manifestDigest)
                }

                // Choosing a platform from the index through the mirror.
                let arm = directory.appendingPathComponent("arm")
                try await Skopeo.copy(
                    from: "\(source)/test/multi:1.0", to: "oci:\(arm.path):x",
                    arguments: ["--override-arch", "arm64", "--src-tls-verify=false"]
                ).requireSuccess()
                #expect(try Skopeo.configArchitecture(ofOCILayout: arm, tag: "x") == "arm64")
            }
        }
    }

    @Test func inspectRawGivesTheUpstreamsBytes() async throws {
        try await withPullThrough { env in
            for (repository, digest) in [
                ("test/multi:1.0", env.images.multi.digest), ("test/docker:1.0", env.images.docker.manifestDigest),
                ("test/dockerlist:1.0", env.images.dockerList.digest),
            ] {
                let result = try await Skopeo.inspectRaw(
                    "docker://\(env.archway.host)/registry.test/\(repository)",
                    arguments: ["--tls-verify=false"]
                ).requireSuccess()
                #expect(sha256Digest(result.stdoutData) == digest, "\(repository)")
            }
        }
    }
}
