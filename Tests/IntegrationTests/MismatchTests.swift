import ArchwayTesting
import Foundation
import Testing

/// Mismatch reporting with the real archway binary: the JSON log line, the report from
/// `archway mismatches` and `/_archway/mismatches`, the suggested rule and its effect.
@Suite(.serialized) struct MismatchTests {
    static let crio = "cri-o/1.28.1 go/go1.21 os/linux arch/arm64"

    @Test func reportedLoggedCountedAndFixedByTheSuggestedRule() async throws {
        try await withUpstreamRegistry { upstream in
            let uploader = RegistryUploader(upstream)
            let amd64 = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "1.0", platform: .linuxAMD64, format: .oci)
            let arm64 = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "arm64-1.0", platform: .linuxARM64, format: .oci)
            _ = try await ImageBuilder.pushIndex(
                to: uploader, repository: "test/multi", tag: "1.0",
                children: [
                    try await ImageBuilder.pushImage(to: uploader, repository: "test/multi", tag: nil, platform: .linuxAMD64, format: .oci),
                    try await ImageBuilder.pushImage(to: uploader, repository: "test/multi", tag: nil, platform: .linuxARM64, format: .oci),
                ],
                format: .oci
            )
            try await withTemporaryDirectory { directory in
                let policies = directory.appendingPathComponent("policies")
                try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
                let configuration = """
                    upstreams:
                      - name: registry.test
                        url: \(upstream.url)
                    default-upstream: registry.test
                    policies: \(policies.path)

                    """
                let archway = try await ArchwayProcess.start(configuration: configuration)
                defer { Task { await archway.close() } }
                let tagURL = "\(archway.url)/v2/registry.test/test/app/manifests/1.0"
                let accept = "application/vnd.oci.image.manifest.v1+json"

                // A CRI-O style arm64 node pulls an amd64-only tag, twice.
                for _ in 0..<2 {
                    let answer = try await httpRequest("GET", tagURL, headers: ["Accept": accept, "User-Agent": Self.crio])
                    #expect(answer.status == 200)
                    #expect(answer.header("warning")?.contains("has no image for linux/arm64") == true)
                }
                let event = try #require(archway.output().split(separator: "\n").first { $0.contains(#""event":"arch_mismatch""#) })
                let fields = try #require(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: String])
                #expect(fields["repository"] == "registry.test/test/app")
                #expect(fields["reference"] == "1.0")
                #expect(fields["client_platform"] == "linux/arm64")
                #expect(fields["image_platforms"] == "linux/amd64")
                #expect(fields["client"] == "127.0.0.1")
                #expect(fields["user_agent"] == Self.crio)

                // The same with the header, and with skopeo whose platform was learned from an index.
                _ = try await httpRequest("GET", tagURL, headers: ["Accept": accept, "Archway-Platform": "linux/arm64"])
                try await withTemporaryDirectory { scratch in
                    try await Skopeo.copy(
                        from: "docker://\(archway.host)/registry.test/test/multi:1.0",
                        to: "oci:\(scratch.appendingPathComponent("m").path):x",
                        arguments: ["--override-arch", "arm64", "--src-tls-verify=false"]
                    ).requireSuccess()
                    try await Skopeo.copy(
                        from: "docker://\(archway.host)/registry.test/test/app:1.0",
                        to: "oci:\(scratch.appendingPathComponent("a").path):x",
                        arguments: ["--src-tls-verify=false"]
                    ).requireSuccess()
                }

                let file = directory.appendingPathComponent("archway.yaml")
                try ("storage:\n  path: \(archway.storage.path)\n" + configuration).write(to: file, atomically: true, encoding: .utf8)
                let report = try await run(
                    try ArchwayProcess.binaryPath(), ["mismatches", "--json", "--since", "1h", "--config", file.path]
                )
                .requireSuccess()
                let rows = try #require(try JSONSerialization.jsonObject(with: report.stdoutData) as? [[String: Any]])
                let row = try #require(rows.first { ($0["repository"] as? String) == "registry.test/test/app" })
                #expect(row["count"] as? Int == 4, "CRI-O twice, the header once, skopeo once: \(row)")
                #expect(row["client_platform"] as? String == "linux/arm64")
                let suggestion = try #require(row["suggestion"] as? String)
                #expect(suggestion.contains(#"from: "{repository}:arm64-{tag}""#))
                let endpoint = try await httpRequest("GET", "\(archway.url)/_archway/mismatches?since=1h")
                #expect(endpoint.status == 200)
                #expect(endpoint.bodyText.contains(#""client_platform":"linux/arm64""#))
                let table = try await run(try ArchwayProcess.binaryPath(), ["mismatches", "--config", file.path]).requireSuccess()
                #expect(table.stdout.contains("registry.test/test/app") && table.stdout.contains("suggested rule"))

                // Applying the suggestion makes the next arm64 pull correct and event-free.
                try suggestion.write(to: policies.appendingPathComponent("suggested.yaml"), atomically: true, encoding: .utf8)
                try await run(try ArchwayProcess.binaryPath(), ["policy", "check", "--config", file.path]).requireSuccess()
                try await archway.restart()
                try await withTemporaryDirectory { scratch in
                    let layout = scratch.appendingPathComponent("arm")
                    try await Skopeo.copy(
                        from: "docker://\(archway.host)/registry.test/test/app:1.0", to: "oci:\(layout.path):x",
                        arguments: ["--override-arch", "arm64", "--src-tls-verify=false"]
                    ).requireSuccess()
                    #expect(try Skopeo.image(inOCILayout: layout, tag: "x").manifestDigest == arm64.manifestDigest)
                }
                let fixed = try await httpRequest(
                    "GET", tagURL, headers: ["Accept": "application/vnd.oci.image.index.v1+json", "User-Agent": Self.crio]
                )
                #expect(fixed.status == 200)
                #expect(fixed.header("warning") == nil)
                #expect(fixed.bodyText.contains(amd64.manifestDigest) && fixed.bodyText.contains(arm64.manifestDigest))
                let after = try await httpRequest("GET", "\(archway.url)/_archway/mismatches")
                #expect(after.bodyText.contains(#""count":4"#), "no new event: \(after.bodyText)")
                await archway.close()
            }
        }
    }

    @Test func aCopierOfEveryPlatformIsNotTakenForANodeOfOne() async throws {
        try await withCacheEnvironment { env in
            try await withArchwayProcess(configuration: env.configuration()) { archway in
                // skopeo copy --all fetches the index and the child of every platform ...
                _ = try await withTemporaryDirectory { scratch in
                    try await Skopeo.copy(
                        from: "docker://\(archway.host)/registry.test/test/multi:1.0", to: "oci:\(scratch.path):all",
                        arguments: ["--all", "--src-tls-verify=false"]
                    ).requireSuccess()
                }
                // ... then the same address pulls single-platform tags of both platforms: no warning.
                for tag in ["amd64", "arm64"] {
                    let answer = try await httpRequest(
                        "GET", "\(archway.url)/v2/registry.test/test/single/manifests/\(tag)",
                        headers: ["Accept": "application/vnd.oci.image.manifest.v1+json"])
                    #expect(answer.status == 200)
                    #expect(answer.header("warning") == nil, "\(tag): \(answer.header("warning") ?? "")")
                }
                #expect(!archway.output().contains(#""event":"arch_mismatch""#), "no mismatch event")
                let report = try await httpRequest("GET", "\(archway.url)/_archway/mismatches")
                #expect(report.bodyText.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(report.bodyText)")
            }
        }
    }

    @Test func refusalFailsDockerCtrAndCRIOAtPullTimeWithTheReason() async throws {
        try await withUpstreamRegistry { upstream in
            _ = try await ImageBuilder.pushImage(
                to: RegistryUploader(upstream), repository: "library/armonly", tag: "1", platform: .linuxARM64, format: .docker)
            let configuration = """
                upstreams:
                  - name: docker.io
                    url: \(upstream.url)
                default-upstream: docker.io
                mismatch: refuse

                """
            try await withArchwayProcess(configuration: configuration) { archway in
                let path = "/v2/docker.io/library/armonly/manifests/1"
                let accept = "application/vnd.docker.distribution.manifest.v2+json"
                // CRI-O (User-Agent arch/amd64): 404 MANIFEST_UNKNOWN saying why.
                let crio = try await httpRequest(
                    "GET", archway.url + path, headers: ["Accept": accept, "User-Agent": "cri-o/1.28.1 go/go1.21 os/linux arch/amd64"])
                #expect(crio.status == 404 && crio.bodyText.contains("MANIFEST_UNKNOWN"), "\(crio.status) \(crio.bodyText)")
                #expect(crio.bodyText.contains("has no image for linux/amd64 (it has linux/arm64)"), "\(crio.bodyText)")
                // A client that states nothing gets the image.
                #expect(try await httpRequest("GET", archway.url + path, headers: ["Accept": accept]).status == 200)

                try await withTemporaryDirectory(prefix: "awr") { directory in
                    // Docker (amd64, it says so in its User-Agent) pulling through Archway as its registry.
                    let daemon = directory.appendingPathComponent("daemon.json")
                    try #"{"insecure-registries": ["\#(archway.host)"]}"#.write(to: daemon, atomically: true, encoding: .utf8)
                    try await withDockerEngine(daemonConfiguration: daemon) { engine in
                        let pull = try await engine.docker(["pull", "\(archway.host)/library/armonly:1"])
                        #expect(!pull.succeeded)
                        #expect(pull.stderr.contains("has no image for linux/amd64 (it has linux/arm64)"), "\(pull.stderr)")
                    }
                    // containerd states its platform in the Archway-Platform header of its hosts.toml.
                    try await withContainerd { containerd in
                        let hosts = directory.appendingPathComponent("hosts")
                        try Containerd.writeHostsToml(
                            directory: hosts, registry: "docker.io", server: "http://127.0.0.1:9", mirror: archway.url,
                            headers: ["Archway-Platform": "linux/amd64"])
                        let pull = try await containerd.pull("docker.io/library/armonly:1", hostsDir: hosts, platform: "linux/amd64")
                        // ctr resolves with HEAD, which has no body for the reason: it shows the 404 from
                        // Archway; the reason is in Archway's log and `archway mismatches`.
                        #expect(!pull.succeeded, "refused at pull time")
                        #expect(
                            pull.stderr.contains("response was http.StatusNotFound") && pull.stderr.contains(archway.host), "\(pull.stderr)"
                        )
                    }
                }
                #expect(archway.output().contains(#""event":"arch_mismatch""#))
            }
        }
    }
}
