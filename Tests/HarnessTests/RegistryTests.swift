import ArchwayTesting
import Foundation
import Testing

@Suite("docker-registry, skopeo and containerd, driven directly")
struct RealSoftwareTests {
    @Test func seededImagesAreServedAsPushed() async throws {
        try await withUpstreamRegistry { registry in
            let images = try await StandardImages.seed(registry)
            #expect(images.registryHost == registry.host)
            #expect(registry.url == "http://127.0.0.1:\(registry.port)")
            let uploader = RegistryUploader(baseURL: registry.url)

            let expectations: [(String, String, String, String)] = [
                ("test/single", "amd64", images.singleAMD64.manifestDigest, MediaTypes.ociManifest),
                ("test/single", "arm64", images.singleARM64.manifestDigest, MediaTypes.ociManifest),
                ("test/multi", "1.0", images.multi.digest, MediaTypes.ociIndex),
                ("test/dockerlist", "1.0", images.dockerList.digest, MediaTypes.dockerManifestList),
                ("test/docker", "1.0", images.docker.manifestDigest, MediaTypes.dockerManifest),
                ("library/busybox", "1", images.busybox.digest, MediaTypes.ociIndex),
            ]
            for (repository, tag, digest, mediaType) in expectations {
                let response = try await uploader.fetchManifest(repository: repository, reference: tag)
                #expect(response.status == 200, "\(repository):\(tag)")
                #expect(response.header("Docker-Content-Digest") == digest, "\(repository):\(tag)")
                #expect(response.header("Content-Type") == mediaType, "\(repository):\(tag)")
                #expect(sha256Digest(response.body) == digest)
            }
            // Children are there by digest, configs and layers as blobs.
            for child in images.multi.children + images.dockerList.children + images.busybox.children {
                let response = try await uploader.fetchManifest(repository: child.repository, reference: child.manifestDigest)
                #expect(response.status == 200)
                #expect(try await uploader.blobExists(repository: child.repository, digest: child.configDigest))
                #expect(try await uploader.blobExists(repository: child.repository, digest: child.layerDigests[0]))
            }
            #expect(images.multiARM64.platform == "linux/arm64/v8")
            #expect(images.multiAMD64.platform == "linux/amd64")
            #expect(images.dockerListARM64.mediaType == MediaTypes.dockerManifest)
            let allDigests =
                [images.singleAMD64.manifestDigest, images.singleARM64.manifestDigest, images.docker.manifestDigest]
                + (images.multi.children + images.dockerList.children + images.busybox.children).map(\.manifestDigest)
            #expect(Set(allDigests).count == allDigests.count)

            // The documented Accept behaviour of distribution 2.8.
            let noOCI = try await uploader.fetchManifest(repository: "test/multi", reference: "1.0", accept: [MediaTypes.dockerManifest])
            #expect(noOCI.status == 404)
            let dockerOnly = try await uploader.fetchManifest(
                repository: "test/dockerlist", reference: "1.0", accept: [MediaTypes.dockerManifest])
            #expect(dockerOnly.header("Docker-Content-Digest") == images.dockerListAMD64.manifestDigest)

            // The access log saw the pushes and the fetches.
            try await registry.waitForAccessLog { $0.method == "GET" && $0.path == "/v2/test/dockerlist/manifests/1.0" }
            #expect(registry.requestCount(method: "PUT", pathSuffix: "/manifests/1.0") == 3)
            #expect(registry.requestCount(method: "GET", pathSuffix: "/test/multi/manifests/1.0") == 2)
            #expect(registry.accessLog().contains { $0.method == "GET" && $0.path == "/v2/test/multi/manifests/1.0" && $0.status == 404 })
        }
    }

    @Test func skopeoSeesTheSeededDigests() async throws {
        try await withUpstreamRegistry { registry in
            let images = try await StandardImages.seed(registry)
            let raw = try await Skopeo.inspectRaw(
                "docker://\(registry.host)/test/multi:1.0", arguments: ["--tls-verify=false"]
            ).requireSuccess()
            #expect(sha256Digest(raw.stdoutData) == images.multi.digest)
            #expect(raw.stdoutData == images.multi.bytes)

            try await withTemporaryDirectory { directory in
                // --all: the index byte for byte, children as blobs.
                let all = directory.appendingPathComponent("all")
                try await Skopeo.copy(
                    from: "docker://\(registry.host)/test/multi:1.0", to: "oci:\(all.path):multi",
                    arguments: ["--all", "--src-tls-verify=false"]
                ).requireSuccess()
                let entry = try Skopeo.layoutEntry(all, tag: "multi")
                #expect(entry.digest == images.multi.digest)
                #expect(entry.mediaType == MediaTypes.ociIndex)
                let arm = try Skopeo.image(inOCILayout: all, tag: "multi", platform: .linuxARM64)
                #expect(arm.manifestDigest == images.multiARM64.manifestDigest)
                #expect(arm.configDigest == images.multiARM64.configDigest)
                #expect(arm.indexDigest == images.multi.digest)
                #expect(try Skopeo.configArchitecture(ofOCILayout: all, platform: "linux/arm64") == "arm64")
                #expect(try Skopeo.configArchitecture(ofOCILayout: all, platform: "linux/amd64") == "amd64")
                for child in images.multi.children {
                    for digest in [child.manifestDigest, child.configDigest] + child.layerDigests {
                        let hex = String(digest.dropFirst("sha256:".count))
                        let blob = all.appendingPathComponent("blobs/sha256/\(hex)")
                        #expect(try sha256OfFile(blob) == digest)
                    }
                }

                // --override-arch arm64: only the arm64 child.
                let arm64 = directory.appendingPathComponent("arm64")
                try await Skopeo.copy(
                    from: "docker://\(registry.host)/test/multi:1.0", to: "oci:\(arm64.path):x",
                    arguments: ["--override-arch", "arm64", "--src-tls-verify=false"]
                ).requireSuccess()
                #expect(try Skopeo.configArchitecture(ofOCILayout: arm64) == "arm64")
                #expect(try Skopeo.layoutEntry(arm64).digest == images.multiARM64.manifestDigest)

                // The same from a Docker manifest list (skopeo converts to OCI when writing oci:).
                let dockerArm = directory.appendingPathComponent("dockerarm")
                try await Skopeo.copy(
                    from: "docker://\(registry.host)/test/dockerlist:1.0", to: "oci:\(dockerArm.path):x",
                    arguments: ["--override-arch", "arm64", "--src-tls-verify=false"]
                ).requireSuccess()
                #expect(try Skopeo.configArchitecture(ofOCILayout: dockerArm) == "arm64")

                // A single-arch tag is copied whatever the platform asked for.
                let mismatch = directory.appendingPathComponent("mismatch")
                try await Skopeo.copy(
                    from: "docker://\(registry.host)/test/single:amd64", to: "oci:\(mismatch.path):x",
                    arguments: ["--override-arch", "arm64", "--src-tls-verify=false"]
                ).requireSuccess()
                #expect(try Skopeo.configArchitecture(ofOCILayout: mismatch) == "amd64")

                // An index without the platform fails.
                let none = try await Skopeo.copy(
                    from: "docker://\(registry.host)/test/multi:1.0", to: "oci:\(directory.appendingPathComponent("none").path):x",
                    arguments: ["--override-arch", "s390x", "--src-tls-verify=false"]
                )
                #expect(!none.succeeded)
                #expect(none.stderr.contains("no image found in image index for architecture s390x"))
            }
            // skopeo pings /v2/ first.
            #expect(registry.requestCount(method: "GET", pathSuffix: "/v2/") > 0)
        }
    }

    @Test func containerdPullsThroughAHostsTomlMirror() async throws {
        try await withUpstreamRegistry { registry in
            let images = try await StandardImages.seed(registry)
            try await withContainerd { containerd in
                try await withTemporaryDirectory { hosts in
                    // The mirror is the upstream itself; the server too, so that nothing leaves loopback.
                    try Containerd.writeHostsToml(
                        directory: hosts, registry: "registry.test", server: registry.url, mirror: registry.url,
                        headers: ["X-Archway-Test": "yes"]
                    )
                    let toml = try String(contentsOf: hosts.appendingPathComponent("registry.test/hosts.toml"), encoding: .utf8)
                    #expect(toml.contains("[host.\"\(registry.url)\"]"))
                    #expect(toml.contains("capabilities = [\"pull\", \"resolve\"]"))
                    #expect(toml.contains("[host.\"\(registry.url)\".header]"))

                    let mark = registry.accessLogMark()
                    let pull = try await containerd.pull("registry.test/test/multi:1.0", hostsDir: hosts, platform: "linux/arm64")
                    #expect(pull.succeeded, "\(pull)")
                    #expect(
                        try await containerd.imageConfigArchitecture("registry.test/test/multi:1.0", platform: "linux/arm64") == "arm64")
                    let stored = try await containerd.storedImage("registry.test/test/multi:1.0", platform: "linux/arm64")
                    #expect(stored.indexDigest == images.multi.digest)
                    #expect(stored.manifestDigest == images.multiARM64.manifestDigest)
                    #expect(try await containerd.imageDigest("registry.test/test/multi:1.0") == images.multi.digest)

                    // containerd sent ?ns=registry.test and fetched only the arm64 child.
                    let requests = registry.accessLog(since: mark)
                    #expect(
                        requests.contains {
                            $0.method == "HEAD" && $0.path == "/v2/test/multi/manifests/1.0" && $0.query == "ns=registry.test"
                        })
                    #expect(requests.contains { $0.path.hasSuffix(images.multiARM64.manifestDigest) })
                    #expect(!requests.contains { $0.path.hasSuffix(images.multiAMD64.manifestDigest) })
                    #expect(requests.allSatisfy { $0.userAgent.hasPrefix("containerd/") })

                    // A Docker manifest list, amd64 (this machine's platform when none is given).
                    let docker = try await containerd.pull("registry.test/test/dockerlist:1.0", hostsDir: hosts, platform: nil)
                    #expect(docker.succeeded, "\(docker)")
                    let dockerStored = try await containerd.storedImage("registry.test/test/dockerlist:1.0", platform: nil)
                    #expect(dockerStored.manifestDigest == images.dockerListAMD64.manifestDigest)
                    #expect(dockerStored.architecture == "amd64")

                    // A single-arch image of the wrong architecture is pulled without complaint.
                    let wrong = try await containerd.pull("registry.test/test/single:amd64", hostsDir: hosts, platform: "linux/arm64")
                    #expect(wrong.succeeded, "\(wrong)")
                    #expect(
                        try await containerd.imageConfigArchitecture("registry.test/test/single:amd64", platform: "linux/arm64") == "amd64")

                    // No child for the platform in an index: a failure.
                    let none = try await containerd.pull("registry.test/test/multi:1.0", hostsDir: hosts, platform: "linux/s390x")
                    #expect(!none.succeeded)
                    #expect(none.stderr.contains("no match for platform"))

                    // Docker Hub names: ctr adds no library/.
                    try Containerd.writeHostsToml(directory: hosts, registry: "docker.io", server: registry.url, mirror: registry.url)
                    let busybox = try await containerd.pull("docker.io/library/busybox:1", hostsDir: hosts, platform: "linux/arm64/v8")
                    #expect(busybox.succeeded, "\(busybox)")
                    #expect(
                        try await containerd.storedImage("docker.io/library/busybox:1", platform: "linux/arm64/v8").manifestDigest
                            == images.busyboxARM64.manifestDigest)
                    #expect(registry.accessLog(since: mark).contains { $0.query == "ns=docker.io" })

                    // Remove and pull again: resolved again.
                    try await containerd.removeImage("registry.test/test/multi:1.0")
                    #expect(try await containerd.imageDigest("registry.test/test/multi:1.0") == nil)
                    let before = registry.requestCount(method: "HEAD", pathSuffix: "/v2/test/multi/manifests/1.0")
                    let again = try await containerd.pull("registry.test/test/multi:1.0", hostsDir: hosts, platform: "linux/arm64")
                    #expect(again.succeeded, "\(again)")
                    try await registry.waitForAccessLog { _ in
                        registry.requestCount(method: "HEAD", pathSuffix: "/v2/test/multi/manifests/1.0") > before
                    }
                }
                #expect(containerd.isRunning)
            }
        }
    }

    @Test func registryStopsAndRestartsOnTheSamePortAndStorage() async throws {
        try await withUpstreamRegistry { registry in
            let images = try await StandardImages.seed(registry)
            let port = registry.port
            #expect(await httpStatus(registry.url + "/v2/") == 200)
            let firstPid = try #require(registry.childProcess?.pid)

            await registry.stop()
            #expect(!registry.isRunning)
            #expect(await httpStatus(registry.url + "/v2/") == nil)
            #expect(kill(firstPid, 0) != 0)  // reaped: no such process

            try await registry.restart()
            #expect(registry.isRunning)
            #expect(registry.port == port)
            #expect(await httpStatus(registry.url + "/v2/") == 200)
            let response = try await RegistryUploader(baseURL: registry.url).fetchManifest(repository: "test/multi", reference: "1.0")
            #expect(response.header("Docker-Content-Digest") == images.multi.digest)
            try await registry.waitForAccessLog { $0.method == "GET" && $0.path == "/v2/test/multi/manifests/1.0" }
            // The log spans both runs: the pushes before, the GETs of /v2/ after.
            #expect(registry.requestCount(method: "PUT", pathSuffix: "/manifests/1.0") == 3)
            #expect(registry.requestCount(method: "GET", pathSuffix: "/v2/") >= 2)
            #expect(registry.childProcess?.pid != firstPid)
            #expect((registry.childProcess?.residentMemoryBytes() ?? 0) > 0)

            // A restart while running works too.
            try await registry.restart()
            #expect(await httpStatus(registry.url + "/v2/") == 200)
        }
    }

    @Test func largeBlobIsStreamedAndVerified() async throws {
        try await withUpstreamRegistry { registry in
            try await withTemporaryDirectory { directory in
                let size: Int64 = 64 << 20
                let file = try makeLargeBlobFile(size: size, seed: 42, in: directory)
                let digest = try sha256OfFile(file)
                let uploader = RegistryUploader(baseURL: registry.url)
                let blob = try await uploader.pushBlob(repository: "test/large", file: file)
                #expect(blob.digest == digest)
                #expect(blob.size == size)
                #expect(try await uploader.blobExists(repository: "test/large", digest: digest))
                let fetched = try await uploader.fetchBlob(repository: "test/large", digest: digest)
                #expect(fetched.status == 200)
                #expect(Int64(fetched.body.count) == size)
                #expect(sha256Digest(fetched.body) == digest)
                // The registry stored exactly those bytes.
                let hex = String(digest.dropFirst("sha256:".count))
                let stored = registry.directory.appendingPathComponent(
                    "storage/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
                )
                #expect(try sha256OfFile(stored) == digest)
            }
        }
    }

    @Test func uploaderRejectsWrongDigestsAndDeletes() async throws {
        try await withUpstreamRegistry { registry in
            let uploader = RegistryUploader(baseURL: registry.url)
            let image = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/delete", tag: "x", platform: .linuxAMD64, format: .oci, compressLayer: false
            )
            #expect(image.layers[0].size % 512 == 0)  // an uncompressed tar
            #expect(try await uploader.fetchManifest(repository: "test/delete", reference: "x").status == 200)
            try await uploader.deleteManifest(repository: "test/delete", digest: image.manifestDigest)
            #expect(try await uploader.fetchManifest(repository: "test/delete", reference: "x").status == 404)
            await #expect(throws: HarnessError.self) {
                try await uploader.pushManifest(
                    repository: "test/delete", reference: "y", bytes: Data("{}".utf8), mediaType: MediaTypes.ociManifest)
            }
        }
    }

    @Test func scopedHelpersStopEverythingWhenTheBodyThrows() async throws {
        struct Boom: Error {}
        var pids: [Int32] = []
        var folders: [URL] = []
        await #expect(throws: Boom.self) {
            try await withUpstreamRegistry { registry in
                try await withContainerd { containerd in
                    pids += [registry.childProcess?.pid, containerd.childProcess?.pid].compactMap { $0 }
                    folders += [registry.directory, containerd.directory]
                    throw Boom()
                }
            }
        }
        #expect(pids.count == 2)
        for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) still exists") }
        for folder in folders { #expect(!FileManager.default.fileExists(atPath: folder.path)) }
    }
}
