import ArchwayTesting
import Foundation
import Testing

/// What images really are, with the real archway binary, a real upstream and skopeo: images
/// built in code whose binaries agree or disagree with their configs, scanned in the background
/// after they are pulled.
@Suite(.serialized) struct BinaryVerificationTests {
    static let amd64 = ELFStub.binary(machine: ELFStub.x86)
    static let arm64 = ELFStub.binary(machine: ELFStub.aarch64)

    /// A Debian-like base: `/bin` a link to `usr/bin`, a shell of `shell`'s machine.
    static func base(_ shell: Data) -> ImageBuilder.Layer {
        var tar = TarWriter()
        tar.directory("usr/bin")
        tar.symbolicLink("bin", to: "usr/bin")
        tar.file("usr/bin/dash", shell)
        tar.symbolicLink("usr/bin/sh", to: "dash")
        tar.file("usr/bin/ls", shell)
        return ImageBuilder.Layer(tar)
    }

    static func layer(_ compression: ImageBuilder.Layer.Compression = .gzip, _ build: (inout TarWriter) -> Void) -> ImageBuilder.Layer {
        var tar = TarWriter()
        build(&tar)
        return ImageBuilder.Layer(tar, compression)
    }

    struct Seeded {
        var liar: PushedImage
        var script: PushedImage
        var honest: [PushedImage]
        var bomb: PushedImage
        var amd64App: PushedImage
    }

    /// Pushes the images: two that lie (one through its script's interpreter), five that do not
    /// (each only when links, replacements and whiteouts are read right), and a bomb.
    static func seed(_ upstream: UpstreamRegistry) async throws -> Seeded {
        let uploader = RegistryUploader(upstream)
        let arm: ImagePlatform = .linuxARM64
        let liar = try await ImageBuilder.pushImage(
            to: uploader, repository: "test/liar", tag: "1.0", platform: arm,
            layers: [base(arm64), layer(.zstd) { $0.file("app/server", amd64) }], entrypoint: ["/app/server"])
        let script = try await ImageBuilder.pushImage(
            to: uploader, repository: "test/script", tag: "1.0", platform: .linuxAMD64,
            layers: [base(arm64), layer { $0.file("docker-entrypoint.sh", Data("#!/bin/sh -e\nexec \"$@\"\n".utf8)) }],
            entrypoint: ["/docker-entrypoint.sh"], cmd: ["server"])
        var honest: [PushedImage] = []
        honest.append(
            try await ImageBuilder.pushImage(
                to: uploader, repository: "test/honest", tag: "1.0", platform: arm,
                layers: [base(arm64), layer(.zstd) { $0.file("app/server", arm64) }], entrypoint: ["/app/server"]))
        honest.append(
            try await ImageBuilder.pushImage(
                to: uploader, repository: "test/symlink", tag: "1.0", platform: .linuxAMD64,
                layers: [
                    base(amd64),
                    layer {
                        $0.file("opt/app/app-1.2", amd64)
                        $0.symbolicLink("usr/local/bin/app", to: "../../../opt/app/app-1.2")
                    },
                ], cmd: ["app"]))
        // Read without the second layer, /app/server would be amd64.
        honest.append(
            try await ImageBuilder.pushImage(
                to: uploader, repository: "test/replaced", tag: "1.0", platform: arm,
                layers: [base(arm64), layer { $0.file("app/server", amd64) }, layer(.none) { $0.file("app/server", arm64) }],
                entrypoint: ["/app/server"]))
        // Read without the whiteout, PATH would find the amd64 /usr/local/bin/server first.
        honest.append(
            try await ImageBuilder.pushImage(
                to: uploader, repository: "test/whiteout", tag: "1.0", platform: arm,
                layers: [
                    base(arm64),
                    layer {
                        $0.file("usr/local/bin/server", amd64)
                        $0.file("usr/bin/server", arm64)
                    },
                    layer { $0.whiteout("usr/local/bin/server") },
                ], cmd: ["server", "--port", "80"]))
        // A 256 MiB layer (incompressible, plain tar): the scan's cost is reading it.
        let big = try makeLargeBlobFile(size: 256 << 20, seed: 7, in: upstream.directory)
        var large = TarWriter()
        large.file("app/server", arm64)
        large.file("data/blob", try Data(contentsOf: big), mode: 0o644)
        honest.append(
            try await ImageBuilder.pushImage(
                to: uploader, repository: "test/large", tag: "1.0", platform: arm, layers: [ImageBuilder.Layer(large, .none)],
                entrypoint: ["/app/server"]))
        try? FileManager.default.removeItem(at: big)
        // A tiny gzip that expands to 128 MiB of zeros inside a member claiming a terabyte.
        var bombTar = TarWriter()
        bombTar.file("app/server", amd64)
        bombTar.header("zeros", size: 1 << 40)
        let bomb = try await ImageBuilder.pushImage(
            to: uploader, repository: "test/bomb", tag: "1.0", platform: arm,
            layers: [ImageBuilder.Layer(raw: LayerCompressor.gzip(prefix: bombTar.data, zeros: 128 << 20), tar: bombTar.data)],
            entrypoint: ["/app/server"])
        let amd64App = try await ImageBuilder.pushImage(
            to: uploader, repository: "test/multi", tag: "amd64-1.0", platform: .linuxAMD64,
            layers: [base(amd64), layer { $0.file("app/server", amd64) }], entrypoint: ["/app/server"])
        return Seeded(liar: liar, script: script, honest: honest, bomb: bomb, amd64App: amd64App)
    }

    static let policy = """
        rules:
          - name: multi
            repository: registry.test/test/multi
            members:
              - from: "{repository}:amd64-{tag}"
              - from: "registry.test/test/liar:{tag}"
                platform: linux/arm64
        """

    @Test func liesAreFoundAfterThePullAndTheirMembersLeftOut() async throws {
        try await withUpstreamRegistry { upstream in
            let seeded = try await Self.seed(upstream)
            try await withTemporaryDirectory { directory in
                let policies = try writePolicies(Self.policy, in: directory)
                let configuration = """
                    upstreams:
                      - name: registry.test
                        url: \(upstream.url)
                    default-upstream: registry.test
                    policies: \(policies.path)
                    tag-ttl: 1s

                    """
                try await withArchwayProcess(configuration: configuration) { archway in
                    // Before any scan, the rule takes the liar for the arm64 image it claims to be.
                    let before = try await httpRequest(
                        "GET", "\(archway.url)/v2/registry.test/test/multi/manifests/1.0",
                        headers: ["Accept": "application/vnd.oci.image.index.v1+json"])
                    #expect(before.bodyText.contains(seeded.liar.manifestDigest))

                    // Pull every image as a node of its stated platform would.
                    let images = [seeded.liar, seeded.script, seeded.bomb] + seeded.honest
                    try await withTemporaryDirectory { scratch in
                        for image in images {
                            try await Skopeo.copy(
                                from: "docker://\(archway.host)/registry.test/\(image.repository):1.0",
                                to:
                                    "oci:\(scratch.appendingPathComponent(image.repository.replacingOccurrences(of: "/", with: "-")).path):x",
                                arguments: ["--override-arch", image.imagePlatform.architecture, "--src-tls-verify=false"]
                            ).requireSuccess()
                        }
                    }
                    // Every image is scanned, after its pull.
                    try await waitUntil(timeout: .seconds(120), "every image scanned") {
                        (try? await Self.scans(archway)) == images.count
                    }

                    let report = try await httpRequest("GET", "\(archway.url)/_archway/mismatches")
                    let rows = try #require(try JSONSerialization.jsonObject(with: report.body) as? [[String: Any]])
                    let binaryRows = rows.filter { $0["kind"] as? String == "binary-platform" }
                    #expect(
                        Set(binaryRows.compactMap { $0["repository"] as? String }) == [
                            "registry.test/test/liar", "registry.test/test/script",
                        ])
                    let liarRow = try #require(binaryRows.first { $0["repository"] as? String == "registry.test/test/liar" })
                    #expect(liarRow["client_platform"] as? String == "linux/arm64")
                    #expect(liarRow["image_platforms"] as? [String] == ["linux/amd64"])
                    #expect(liarRow["reference"] as? String == "1.0")
                    #expect(rows.count == binaryRows.count, "no other event: \(rows)")

                    // The log line names the binary and, for the script, the way to it.
                    let events = archway.output().split(separator: "\n").filter { $0.contains(#""kind":"binary-platform""#) }
                    #expect(events.contains { $0.contains(#""binary":"/app/server""#) && $0.contains("ELF 64-bit LSB x86-64") })
                    #expect(
                        events.contains {
                            $0.contains(#""binary":"/usr/bin/dash""#) && $0.contains("/docker-entrypoint.sh => /bin/sh -> /usr/bin/dash")
                        })
                    // The bomb stopped at its limit: no verdict, no event.
                    #expect(archway.output().contains("expands more than 100 times"))
                    // The 256 MiB layer was served before it was read.
                    let log = archway.output()
                    let large = seeded.honest[4]
                    let served = try #require(log.range(of: #""path":"/v2/registry.test/test/large/blobs/\#(large.layerDigests[0])""#))
                    let scanned = try #require(log.range(of: #""image":"\#(large.manifestDigest)""#))
                    #expect(served.lowerBound < scanned.lowerBound)

                    // Once scanned, the liar is left out of the synthesized index, and the log says why.
                    try await Task.sleep(for: .seconds(1.2))
                    let after = try await httpRequest(
                        "GET", "\(archway.url)/v2/registry.test/test/multi/manifests/1.0",
                        headers: ["Accept": "application/vnd.oci.image.index.v1+json"])
                    #expect(after.status == 200)
                    #expect(!after.bodyText.contains(seeded.liar.manifestDigest))
                    #expect(after.bodyText.contains(seeded.amd64App.manifestDigest))
                    #expect(
                        archway.output().contains(
                            "excluded, its config says linux/arm64, but its entrypoint /app/server is ELF 64-bit LSB x86-64"))

                    // archway inspect says the same, per platform, and exits 2 for a lie.
                    let binary = try ArchwayProcess.binaryPath()
                    let liar = try await run(binary, ["inspect", "--config", archway.configFile.path, "registry.test/test/liar:1.0"])
                    #expect(liar.exitCode == 2)
                    #expect(liar.stdout.contains("config says  linux/arm64"))
                    #expect(liar.stdout.contains("binary       /app/server: ELF 64-bit LSB x86-64 (amd64)"))
                    #expect(liar.stdout.contains("MISMATCH: the config says arm64, the binary is amd64"))
                    let honest = try await run(binary, ["inspect", "--config", archway.configFile.path, "registry.test/test/whiteout:1.0"])
                    #expect(honest.exitCode == 0)
                    #expect(honest.stdout.contains("runs         server -> /usr/bin/server"))
                    #expect(honest.stdout.contains("verdict      ok"))
                    let bomb = try await run(
                        binary, ["inspect", "--config", archway.configFile.path, "--json", "registry.test/test/bomb:1.0"])
                    #expect(bomb.exitCode == 0)
                    #expect(bomb.stdout.contains(#""outcome" : "incomplete""#))
                    // An index: one block per platform, the liar's among them, scanned on the spot.
                    let multi = try await run(binary, ["inspect", "--config", archway.configFile.path, "registry.test/test/multi:1.0"])
                    #expect(multi.stdout.contains("linux/amd64  \(seeded.amd64App.manifestDigest)"))
                }
            }
        }
    }

    /// The scans finished, from `/metrics`.
    static func scans(_ archway: ArchwayProcess) async throws -> Int {
        let metrics = try await httpRequest("GET", "\(archway.url)/metrics").bodyText
        return metrics.split(separator: "\n").filter { $0.hasPrefix("archway_binary_scans_total{") }.reduce(0) { total, line in
            total + (Int(Double(line.split(separator: " ").last ?? "") ?? 0))
        }
    }
}
