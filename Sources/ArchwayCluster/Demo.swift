import ArchwayTesting
import Foundation

/// `make demo`: the whole product in two minutes, offline. A local upstream with per-architecture
/// tags and a single-architecture image, Archway with a rule for them, skopeo pulling the
/// synthesized tag for amd64 and arm64, an arm64 node pulling the single-architecture image;
/// then what happened, and the page's address. Ctrl-C stops everything.
extension Cluster {
    static let demoPolicy = """
        rules:
          - name: app-multiarch
            repository: registry.demo/demo/app
            members:
              - from: "{repository}:amd64-{tag}"
              - from: "{repository}:arm64-{tag}"
        """

    /// A one-binary image: `/usr/local/bin/<name>`, an ELF header of the platform's machine.
    @discardableResult
    static func seedImage(
        _ uploader: RegistryUploader, repository: String, tag: String, platform: ImagePlatform, machine: UInt16
    ) async throws -> PushedImage {
        var tar = TarWriter()
        let name = String(repository.split(separator: "/").last ?? "app")
        tar.file("usr/local/bin/\(name)", ELFStub.binary(machine: machine))
        return try await ImageBuilder.pushImage(
            to: uploader, repository: repository, tag: tag, platform: platform, layers: [ImageBuilder.Layer(tar)], entrypoint: [name])
    }

    static func demo() async throws {
        say("starting a local docker-registry (the upstream) and Archway ...")
        try await withUpstreamRegistry { upstream in
            let uploader = RegistryUploader(upstream)
            let amd64 = try await seedImage(uploader, repository: "demo/app", tag: "amd64-1.0", platform: .linuxAMD64, machine: ELFStub.x86)
            let arm64 = try await seedImage(
                uploader, repository: "demo/app", tag: "arm64-1.0", platform: .linuxARM64, machine: ELFStub.aarch64)
            try await seedImage(uploader, repository: "demo/tool", tag: "1.0", platform: .linuxAMD64, machine: ELFStub.x86)
            try await seedImage(uploader, repository: "demo/tool", tag: "arm64-1.0", platform: .linuxARM64, machine: ELFStub.aarch64)
            try await withTemporaryDirectory { directory in
                let policies = try writePolicies(demoPolicy, in: directory, file: "app.yaml")
                let configuration = """
                    upstreams:
                      - name: registry.demo
                        url: \(upstream.url)
                    default-upstream: registry.demo
                    policies: \(policies.path)

                    """
                let archway = try await ArchwayProcess.start(configuration: configuration, maxSize: "1GiB")
                defer { Task { await archway.close() } }
                say(
                    """

                    upstream  docker-registry at \(upstream.url) (known to Archway as registry.demo) with
                              demo/app:amd64-1.0, demo/app:arm64-1.0 (one architecture per tag),
                              demo/tool:1.0 (amd64 only) and demo/tool:arm64-1.0
                    archway   \(archway.url), policy: demo/app:<tag> = amd64-<tag> + arm64-<tag>

                    1. skopeo pulls demo/app:1.0, a tag that does not exist upstream, as amd64 and as arm64:
                    """)
                try await withTemporaryDirectory { scratch in
                    for (arch, expected) in [("amd64", amd64), ("arm64", arm64), ("amd64", amd64)] {
                        let layout = scratch.appendingPathComponent("app-\(arch)")
                        try await Skopeo.copy(
                            from: "docker://\(archway.host)/registry.demo/demo/app:1.0", to: "oci:\(layout.path):x",
                            arguments: ["--override-arch", arch, "--src-tls-verify=false"]
                        ).requireSuccess()
                        let got = try Skopeo.image(inOCILayout: layout, tag: "x")
                        let source = got.manifestDigest == expected.manifestDigest ? "demo/app:\(arch)-1.0" : "?"
                        say("   \(arch): got \(String(got.manifestDigest.prefix(19)))… (\(got.architecture)), the image of \(source)")
                    }
                }
                let index = try await httpRequest(
                    "GET", "\(archway.url)/v2/registry.demo/demo/app/manifests/1.0",
                    headers: ["Accept": "application/vnd.oci.image.index.v1+json"])
                say("   the synthesized index \(index.header("docker-content-digest") ?? "?"):")
                if let object = try? JSONSerialization.jsonObject(with: index.body) as? [String: Any],
                    let children = object["manifests"] as? [[String: Any]]
                {
                    for child in children {
                        let platform = child["platform"] as? [String: Any] ?? [:]
                        say("     \(platform["os"] ?? "?")/\(platform["architecture"] ?? "?")  \(child["digest"] ?? "?")")
                    }
                }
                let log = archway.output()
                let hits = log.components(separatedBy: #""cache":"HIT""#).count - 1
                let misses = log.components(separatedBy: #""cache":"MISS""#).count - 1
                say("   cache: \(hits) answers from the cache, \(misses) fetched upstream (the third pull was all hits)")

                say("\n2. an arm64 node (Archway-Platform: linux/arm64, as containerd's hosts.toml sends it) pulls demo/tool:1.0:")
                let tool = try await httpRequest(
                    "GET", "\(archway.url)/v2/registry.demo/demo/tool/manifests/1.0",
                    headers: ["Accept": "application/vnd.oci.image.manifest.v1+json", "Archway-Platform": "linux/arm64"])
                say("   HTTP \(tool.status), Warning: \(tool.header("warning") ?? "none")")
                let report = try await httpRequest("GET", "\(archway.url)/_archway/mismatches")
                if let rows = try? JSONSerialization.jsonObject(with: report.body) as? [[String: Any]] {
                    for row in rows {
                        say(
                            "   mismatch: \(row["repository"] ?? "?"):\(row["reference"] ?? "?") \(row["kind"] ?? "?"), \(row["client_platform"] ?? "?") client"
                        )
                        if let suggestion = row["suggestion"] as? String {
                            say("   the rule that fixes it (archway mismatches prints it too):")
                            say(suggestion.split(separator: "\n").map { "     " + $0 }.joined(separator: "\n"))
                        }
                    }
                }
                say(
                    """

                    The operator's page: \(archway.url)/_archway/   (its JSON: \(archway.url)/_archway/api/overview)
                    Pull yourself: skopeo inspect --tls-verify=false docker://\(archway.host)/registry.demo/demo/app:1.0
                    Archway's log: \(archway.logFile.path)
                    Ctrl-C stops everything.
                    """)
                // `--once` (the test of the demo): what it printed is the point, nothing to wait for.
                if !CommandLine.arguments.contains("--once") {
                    await waitForInterrupt()
                    say("\nstopping ...")
                }
                await archway.close()
            }
        }
    }
}
