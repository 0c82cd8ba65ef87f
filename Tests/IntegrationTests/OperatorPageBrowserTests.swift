import ArchwayTesting
import Foundation
import Testing

/// A real headless Chromium reads the operator's page after a scripted run of pulls: hits and
/// misses, a synthesized tag, a mismatch with its suggested rule, an upstream stopped, and a
/// download in flight. Screenshots of each section go to `.build/operator-page/`.
@Suite(.serialized) struct OperatorPageBrowserTests {
    static let policy = """
        rules:
          - name: app
            repository: registry.test/test/app
            members:
              - from: "{repository}:amd64-{tag}"
              - from: "{repository}:arm64-{tag}"
        """

    @Test func chromiumSeesEverySectionTheBarMoveAndCopiesTheRule() async throws {
        try await withUpstreamRegistry { upstream in
            try await withUpstreamRegistry { other in
                let uploader = RegistryUploader(upstream)
                try await ImageBuilder.pushImage(
                    to: uploader, repository: "test/app", tag: "amd64-1.0", platform: .linuxAMD64, format: .oci)
                try await ImageBuilder.pushImage(
                    to: uploader, repository: "test/app", tag: "arm64-1.0", platform: .linuxARM64, format: .oci)
                try await ImageBuilder.pushImage(to: uploader, repository: "test/tool", tag: "2.1", platform: .linuxAMD64, format: .oci)
                try await ImageBuilder.pushImage(
                    to: uploader, repository: "test/tool", tag: "arm64-2.1", platform: .linuxARM64, format: .oci)
                try await ImageBuilder.pushImage(
                    to: RegistryUploader(other), repository: "test/elsewhere", tag: "1", platform: .linuxAMD64, format: .oci)
                let big = try makeLargeBlobFile(size: 24 << 20, seed: 3, in: upstream.directory)
                let bigBlob = try await uploader.pushBlob(repository: "test/big", file: big)
                let proxy = try await FaultInjectingProxy.start(upstream: upstream.url)
                defer { Task { await proxy.stop() } }
                try await withTemporaryDirectory { directory in
                    let policies = try writePolicies(Self.policy, in: directory)
                    let configuration = """
                        upstreams:
                          - name: registry.test
                            url: \(proxy.url)
                          - name: other.test
                            url: \(other.url)
                        default-upstream: registry.test
                        policies: \(policies.path)
                        tag-ttl: 0

                        """
                    try await withArchwayProcess(configuration: configuration, maxSize: "10GiB") { archway in
                        // The synthesized tag, for both platforms (misses, then hits); a single-arch
                        // tool pulled by an arm64 node (a mismatch whose fix exists upstream).
                        try await withTemporaryDirectory { scratch in
                            for arch in ["amd64", "arm64", "arm64"] {
                                try await Skopeo.copy(
                                    from: "docker://\(archway.host)/registry.test/test/app:1.0",
                                    to: "oci:\(scratch.appendingPathComponent("app-\(arch)").path):x",
                                    arguments: ["--override-arch", arch, "--src-tls-verify=false"]
                                ).requireSuccess()
                            }
                            try await Skopeo.copy(
                                from: "docker://\(archway.host)/other.test/test/elsewhere:1",
                                to: "oci:\(scratch.appendingPathComponent("elsewhere").path):x", arguments: ["--src-tls-verify=false"]
                            ).requireSuccess()
                        }
                        let tool = try await httpRequest(
                            "GET", "\(archway.url)/v2/registry.test/test/tool/manifests/2.1",
                            headers: ["Accept": "application/vnd.oci.image.manifest.v1+json", "Archway-Platform": "linux/arm64"])
                        #expect(tool.header("warning")?.contains("has no image for linux/arm64") == true)

                        // The other upstream stops; Archway finds out at the next pull.
                        await other.stop()
                        _ = try await httpRequest(
                            "GET", "\(archway.url)/v2/other.test/test/elsewhere/manifests/1",
                            headers: ["Accept": "application/vnd.oci.image.manifest.v1+json"])

                        // A 24 MiB blob at 256 KiB/s: in flight until the page was read (then the
                        // rest goes at once), however long Chromium takes to start.
                        proxy.setBlobFault(.throttle(bytesPerSecond: 256 << 10))
                        let download = Task {
                            try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/big/blobs/\(bigBlob.digest)")
                        }
                        try await waitUntil(timeout: .seconds(10), "the download to start") {
                            (try? await httpRequest("GET", "\(archway.url)/_archway/api/overview"))?.bodyText.contains(bigBlob.digest)
                                == true
                        }
                        let folder = PageBrowser.screenshotFolder
                        let report = try await PageBrowser.check(
                            url: "\(archway.url)/_archway/", screenshots: folder, watchDownload: .seconds(60))
                        proxy.setBlobFault(.none)
                        #expect((try await download.value).status == 200)

                        let sections = try #require(report["sections"] as? [String: String])
                        let overview = sections["overview"] ?? ""
                        #expect(overview.contains("hit ratio"), "\(overview)")
                        #expect(overview.contains("of 10.0 GiB"), "\(overview)")
                        let moved = report["moved"] as? [String: Any]
                        #expect(
                            moved?["digest"] as? String == bigBlob.digest, "the bar did not move: \(String(describing: report["moved"]))")

                        let upstreams = sections["upstreams"] ?? ""
                        #expect(upstreams.contains("registry.test") && upstreams.contains("reachable"), "\(upstreams)")
                        let otherLine = upstreams.split(separator: "\n").first { $0.contains("other.test") } ?? ""
                        #expect(otherLine.contains("unreachable"), "\(upstreams)")

                        let images = sections["images"] ?? ""
                        #expect(images.contains("registry.test/test/app"), "\(images)")
                        #expect(images.contains("linux/amd64, linux/arm64"), "\(images)")
                        #expect(images.contains("registry.test/test/tool") && images.contains("other.test/test/elsewhere"), "\(images)")

                        let policies = sections["policies"] ?? ""
                        #expect(policies.contains("registry.test/test/app:1.0"), "\(policies)")
                        #expect(
                            policies.contains("registry.test/test/app:amd64-1.0") && policies.contains("registry.test/test/app:arm64-1.0"))
                        #expect(policies.contains("linux/arm64"), "\(policies)")

                        let mismatches = sections["mismatches"] ?? ""
                        #expect(
                            mismatches.contains("registry.test/test/tool:2.1") && mismatches.contains("single-platform"), "\(mismatches)")
                        let suggestion = try #require(report["suggestion"] as? String)
                        #expect(suggestion.contains(#"from: "{repository}:arm64-{tag}""#))
                        #expect(report["copied"] as? String == suggestion, "copied: \(String(describing: report["copied"]))")

                        let console = report["console"] as? [Any] ?? []
                        #expect(console.isEmpty, "console errors: \(console)")
                        let screenshots = report["screenshots"] as? [String] ?? []
                        for name in ["overview", "upstreams", "images", "policies", "mismatches", "page", "overview-download"] {
                            #expect(screenshots.contains("\(folder.path)/\(name).png"), "no screenshot of \(name)")
                            #expect(FileManager.default.fileExists(atPath: "\(folder.path)/\(name).png"))
                        }

                        // With scripts off, the page is the numbers of the moment.
                        let plain = try await httpRequest("GET", "\(archway.url)/_archway/")
                        #expect(plain.bodyText.contains("registry.test/test/tool:2.1"))
                        #expect(plain.bodyText.contains("unreachable"))
                    }
                }
            }
        }
    }
}
