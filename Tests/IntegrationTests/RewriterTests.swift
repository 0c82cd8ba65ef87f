import ArchwayTesting
import Foundation
import Testing

/// The rewriter with the real archway binary: an upstream that has only per-architecture tags,
/// real clients choosing a platform from the synthesized index.
@Suite(.serialized) struct RewriterTests {
    struct Seeded {
        let amd64: PushedImage
        let arm64: PushedImage
        let armv7: PushedImage
        let dockerAMD64: PushedImage
        let dockerARM64: PushedImage
    }

    static func seed(_ upstream: UpstreamRegistry) async throws -> Seeded {
        let uploader = RegistryUploader(upstream)
        return Seeded(
            amd64: try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "amd64-1.0", platform: .linuxAMD64, format: .oci),
            arm64: try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "arm64-1.0", platform: .linuxARM64, format: .oci),
            // Another repository (per-repository scheme), reached through another upstream name.
            armv7: try await ImageBuilder.pushImage(
                to: uploader, repository: "arm32v7/app", tag: "1.0", platform: "linux/arm/v7", format: .oci
            ),
            dockerAMD64: try await ImageBuilder.pushImage(
                to: uploader, repository: "test/dapp", tag: "amd64-1.0", platform: .linuxAMD64, format: .docker
            ),
            dockerARM64: try await ImageBuilder.pushImage(
                to: uploader, repository: "test/dapp", tag: "arm64-1.0", platform: .linuxARM64, format: .docker
            )
        )
    }

    static let policy = """
        rules:
          - name: app
            repository: registry.test/test/app
            members:
              - from: "{repository}:amd64-{tag}"
              - from: "{repository}:arm64-{tag}"
                platform: linux/arm64/v8
              - from: "other.test/arm32v7/app:{tag}"
          - name: dapp
            repository: registry.test/test/dapp
            members:
              - from: "{repository}:amd64-{tag}"
              - from: "{repository}:arm64-{tag}"
          - name: liar
            repository: registry.test/test/liar
            members:
              - from: "registry.test/test/app:amd64-{tag}"
              - from: "registry.test/test/app:arm64-{tag}"
                platform: linux/amd64
        """

    /// Registry, policies, and one Archway; `body` may start more Archways with `configuration`.
    func withRewriter(_ body: (UpstreamRegistry, Seeded, String, ArchwayProcess) async throws -> Void) async throws {
        try await withUpstreamRegistry { upstream in
            let seeded = try await Self.seed(upstream)
            try await withTemporaryDirectory { directory in
                let policies = try writePolicies(Self.policy, in: directory)
                let configuration = """
                    upstreams:
                      - name: registry.test
                        url: \(upstream.url)
                      - name: other.test
                        url: \(upstream.url)
                    default-upstream: registry.test
                    policies: \(policies.path)

                    """
                try await withArchwayProcess(configuration: configuration) { archway in
                    try await body(upstream, seeded, configuration, archway)
                }
            }
        }
    }

    @Test func skopeoAndCtrGetTheirPlatformFromASynthesizedIndex() async throws {
        try await withRewriter { _, seeded, _, archway in
            try await withTemporaryDirectory { directory in
                let source = "docker://\(archway.host)/registry.test/test/app:1.0"
                for (arch, expected) in [("arm64", seeded.arm64), ("amd64", seeded.amd64)] {
                    let layout = directory.appendingPathComponent(arch)
                    try await Skopeo.copy(
                        from: source, to: "oci:\(layout.path):x", arguments: ["--override-arch", arch, "--src-tls-verify=false"]
                    )
                    .requireSuccess()
                    let image = try Skopeo.image(inOCILayout: layout, tag: "x")
                    #expect(image.architecture == arch)
                    #expect(image.manifestDigest == expected.manifestDigest)
                }
                let arm = directory.appendingPathComponent("arm")
                try await Skopeo.copy(
                    from: source, to: "oci:\(arm.path):x",
                    arguments: ["--override-arch", "arm", "--override-variant", "v7", "--src-tls-verify=false"]
                ).requireSuccess()
                #expect(try Skopeo.image(inOCILayout: arm, tag: "x").manifestDigest == seeded.armv7.manifestDigest)
                let s390x = try await Skopeo.copy(
                    from: source, to: "oci:\(directory.appendingPathComponent("s390x").path):x",
                    arguments: ["--override-arch", "s390x", "--src-tls-verify=false"]
                )
                #expect(!s390x.succeeded)
                #expect(s390x.stderr.contains("no image found in image index for architecture s390x"), "\(s390x.stderr)")

                try await withContainerd { containerd in
                    let hosts = directory.appendingPathComponent("hosts")
                    try await pullEachPlatform("registry.test/test/app:1.0", with: containerd, mirror: archway.url, in: hosts)
                    let missing = try await containerd.pull("registry.test/test/app:1.0", hostsDir: hosts, platform: "linux/s390x")
                    #expect(!missing.succeeded)
                }
            }
        }
    }

    @Test func headThenGetByDigestWorksAfterTheUpstreamStopsAndAfterARestart() async throws {
        try await withRewriter { upstream, seeded, configuration, archway in
            let accept = ["Accept": "application/vnd.oci.image.index.v1+json"]
            let head = try await httpRequest("HEAD", "\(archway.url)/v2/registry.test/test/app/manifests/1.0", headers: accept)
            #expect(head.status == 200)
            #expect(head.header("content-type") == "application/vnd.oci.image.index.v1+json")
            let digest = try #require(head.header("docker-content-digest"))
            let byDigest = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/manifests/\(digest)", headers: accept)
            #expect(byDigest.status == 200)
            #expect(sha256Digest(byDigest.body) == digest)
            #expect(byDigest.bodyText.contains(seeded.amd64.manifestDigest) && byDigest.bodyText.contains(seeded.armv7.manifestDigest))

            // A second instance with its own empty storage synthesizes the same bytes.
            try await withArchwayProcess(configuration: configuration) { twin in
                let twinHead = try await httpRequest("HEAD", "\(twin.url)/v2/registry.test/test/app/manifests/1.0", headers: accept)
                #expect(twinHead.header("docker-content-digest") == digest)
            }

            await upstream.stop()
            let offline = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/manifests/\(digest)", headers: accept)
            #expect(offline.status == 200)
            #expect(sha256Digest(offline.body) == digest)
            try await archway.restart()
            let restarted = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/manifests/\(digest)", headers: accept)
            #expect(restarted.status == 200)
            #expect(sha256Digest(restarted.body) == digest)
            let byTag = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/manifests/1.0", headers: accept)
            #expect(byTag.header("docker-content-digest") == digest)
            try await upstream.restart()
        }
    }

    @Test func mediaTypesExclusionsAndTagLists() async throws {
        try await withRewriter { _, seeded, _, archway in
            let accept = [
                "Accept": "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
            ]
            let docker = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/dapp/manifests/1.0", headers: accept)
            #expect(docker.header("content-type") == "application/vnd.docker.distribution.manifest.list.v2+json")
            #expect(docker.bodyText.contains(seeded.dockerARM64.manifestDigest))
            let oci = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/manifests/1.0", headers: accept)
            #expect(oci.header("content-type") == "application/vnd.oci.image.index.v1+json")

            let liar = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/liar/manifests/1.0", headers: accept)
            #expect(liar.status == 200)
            #expect(!liar.bodyText.contains(seeded.arm64.manifestDigest), "the member whose declared platform is contradicted is left out")
            #expect(archway.output().contains("declared platform linux/amd64, but its config says linux/arm64"))

            let tags = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/tags/list")
            #expect(tags.bodyText.contains(#""1.0""#), "\(tags.bodyText)")
        }
    }

    @Test func policyPreviewPrintsTheIndexItsDigestAndItsSources() async throws {
        try await withRewriter { _, seeded, configuration, archway in
            try await withTemporaryDirectory { directory in
                let file = directory.appendingPathComponent("archway.yaml")
                try ("storage:\n  path: \(directory.appendingPathComponent("unused").path)\n" + configuration).write(
                    to: file, atomically: true, encoding: .utf8
                )
                let preview = try await run(
                    try ArchwayProcess.binaryPath(), ["policy", "preview", "registry.test/test/app:1.0", "--config", file.path]
                ).requireSuccess()
                let served = try await httpRequest(
                    "HEAD", "\(archway.url)/v2/registry.test/test/app/manifests/1.0",
                    headers: ["Accept": "application/vnd.oci.image.index.v1+json"]
                )
                let digest = try #require(served.header("docker-content-digest"))
                #expect(preview.stdout.contains("index: application/vnd.oci.image.index.v1+json \(digest)"), "\(preview.stdout)")
                #expect(
                    preview.stdout.contains("linux/arm/v7  \(seeded.armv7.manifestDigest)  from other.test/arm32v7/app:1.0"),
                    "\(preview.stdout)")
                #expect(preview.stdout.contains("rule: app"))
                let check = try await run(try ArchwayProcess.binaryPath(), ["policy", "check", "--config", file.path])
                #expect(check.succeeded, "\(check)")
                #expect(check.stdout.contains("3 rules: OK"))
                let broken = directory.appendingPathComponent("broken.yaml")
                try "rules:\n  - repository: registry.test/x/y\n    members:\n      - from: \"{repository}:{arch}\"\n".write(
                    to: broken, atomically: true, encoding: .utf8
                )
                let refused = try await run(try ArchwayProcess.binaryPath(), ["policy", "check", broken.path, "--config", file.path])
                #expect(refused.exitCode == 1)
                #expect(refused.stderr.contains("\(broken.path):4: from: unknown placeholder {arch}"), "\(refused.stderr)")
            }
        }
    }

    @Test func membersFromAnotherRepositoryAreServedUnderTheRequestedName() async throws {
        try await withRewriter { upstream, seeded, _, archway in
            let accept = ["Accept": "application/vnd.oci.image.index.v1+json"]
            _ = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/manifests/1.0", headers: accept)
            let child = try await httpRequest(
                "GET", "\(archway.url)/v2/registry.test/test/app/manifests/\(seeded.armv7.manifestDigest)",
                headers: ["Accept": "application/vnd.oci.image.manifest.v1+json"]
            )
            #expect(child.status == 200)
            #expect(sha256Digest(child.body) == seeded.armv7.manifestDigest)
            let layer = seeded.armv7.layers[0]
            let blob = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/app/blobs/\(layer.digest)")
            #expect(blob.status == 200)
            #expect(sha256Digest(blob.body) == layer.digest)
            #expect(upstream.accessLog().contains { $0.path == "/v2/arm32v7/app/blobs/\(layer.digest)" })
        }
    }
}
