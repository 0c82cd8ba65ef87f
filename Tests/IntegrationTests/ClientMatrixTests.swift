import ArchwayTesting
import Foundation
import Synchronization
import Testing

/// Every real client that runs here, configured with what `archway mirrors` generates, pulls a
/// single-architecture image, an upstream index and a policy-synthesized tag for each platform it
/// can ask for, online and then with the upstream stopped; the architecture is read from the
/// client's own view. The last run's matrix is written into the README.
@Suite(.serialized) struct ClientMatrixTests {
    /// What one case should give: the requested platform, or a fixed one for a single image.
    struct Case: Sendable {
        let name: String
        let repository: String
        let tag: String
        let fixedArchitecture: String?
    }

    static let cases = [
        Case(name: "single-arch image", repository: "library/alpha", tag: "1", fixedArchitecture: "amd64"),
        Case(name: "upstream index", repository: "library/multi", tag: "1", fixedArchitecture: nil),
        Case(name: "synthesized tag", repository: "library/app", tag: "1", fixedArchitecture: nil),
    ]
    static let architectures = ["amd64", "arm64"]

    /// Results, keyed `client|case|platform|phase`.
    final class Matrix: Sendable {
        private let cells = Mutex<[String: String]>([:])
        private let versions = Mutex<[String: String]>([:])

        func record(_ client: String, _ testCase: String, _ architecture: String, _ phase: String, _ outcome: String) {
            cells.withLock { $0["\(client)|\(testCase)|\(architecture)|\(phase)"] = outcome }
        }

        func version(_ client: String, _ version: String) {
            versions.withLock { $0[client] = version }
        }

        func markdown(clients: [String]) -> String {
            let cells = self.cells.withLock { $0 }
            let versions = self.versions.withLock { $0 }
            var lines = [
                "| client | version | case | linux/amd64 | linux/arm64 | offline amd64 | offline arm64 |",
                "|---|---|---|---|---|---|---|",
            ]
            for client in clients {
                for testCase in ClientMatrixTests.cases {
                    let outcomes = ["online", "offline"].flatMap { phase in
                        ClientMatrixTests.architectures.map { cells["\(client)|\(testCase.name)|\($0)|\(phase)"] ?? "not run" }
                    }
                    lines.append(
                        "| \(client) | \(versions[client] ?? "?") | \(testCase.name) | " + outcomes.joined(separator: " | ") + " |")
                }
            }
            return lines.joined(separator: "\n")
        }
    }

    @Test func everyClientPullsEveryCaseOnEveryPlatformOnlineAndOffline() async throws {
        let matrix = Matrix()
        let clients = ["containerd (ctr)", "podman", "docker", "skopeo", "python-dxf"]
        try await withUpstreamRegistry { upstream in
            let uploader = RegistryUploader(upstream)
            _ = try await ImageBuilder.pushImage(
                to: uploader, repository: "library/alpha", tag: "1", platform: .linuxAMD64, format: .docker)
            _ = try await ImageBuilder.pushImage(
                to: uploader, repository: "library/armonly", tag: "1", platform: .linuxARM64, format: .docker)
            _ = try await ImageBuilder.pushIndex(
                to: uploader, repository: "library/multi", tag: "1",
                children: [
                    try await ImageBuilder.pushImage(
                        to: uploader, repository: "library/multi", tag: nil, platform: .linuxAMD64, format: .docker),
                    try await ImageBuilder.pushImage(
                        to: uploader, repository: "library/multi", tag: nil, platform: .linuxARM64, format: .docker),
                ],
                format: .docker
            )
            _ = try await ImageBuilder.pushImage(
                to: uploader, repository: "library/app", tag: "amd64-1", platform: .linuxAMD64, format: .docker)
            _ = try await ImageBuilder.pushImage(
                to: uploader, repository: "library/app", tag: "arm64-1", platform: .linuxARM64, format: .docker)

            try await withTemporaryDirectory(prefix: "awm") { directory in
                let policies = directory.appendingPathComponent("policies")
                try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
                try """
                rules:
                  - name: app
                    repository: docker.io/library/app
                    members:
                      - from: "{repository}:amd64-{tag}"
                      - from: "{repository}:arm64-{tag}"
                """.write(to: policies.appendingPathComponent("app.yaml"), atomically: true, encoding: .utf8)
                let configuration = """
                    upstreams:
                      - name: docker.io
                        url: \(upstream.url)
                        aliases: [index.docker.io, registry-1.docker.io]
                    default-upstream: docker.io
                    policies: \(policies.path)

                    """
                try await withArchwayProcess(configuration: configuration) { archway in
                    let file = directory.appendingPathComponent("archway.yaml")
                    try configuration.write(to: file, atomically: true, encoding: .utf8)
                    let archwayBinary = try ArchwayProcess.binaryPath()
                    func mirrors(_ client: String) async throws -> URL {
                        let target = directory.appendingPathComponent("mirrors-\(client)")
                        try await run(
                            archwayBinary, ["mirrors", client, "--url", archway.url, "--config", file.path, "--write", target.path]
                        )
                        .requireSuccess()
                        return target
                    }
                    let containerdHosts = try await mirrors("containerd")
                    let crio = try await mirrors("crio")
                    let docker = try await mirrors("docker")
                    let python = try await PythonRegistryClient.prepare()
                    matrix.version(
                        "containerd (ctr)",
                        (try? await run(try requireProgram("ctr"), ["--version"]))?.stdout.split(separator: " ").last.map(String.init)?
                            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?")
                    matrix.version(
                        "skopeo",
                        (try? await run(try requireProgram("skopeo"), ["--version"]))?.stdout.split(separator: " ").last.map(String.init)?
                            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?")
                    matrix.version(
                        "podman",
                        (try? await run(try requireProgram("podman"), ["--version"]))?.stdout.split(separator: " ").last.map(String.init)?
                            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?")
                    matrix.version("python-dxf", "12.1.1")

                    try await withContainerd { containerd in
                        try await withDockerEngine(daemonConfiguration: docker.appendingPathComponent("daemon.json")) { engine in
                            matrix.version(
                                "docker",
                                (try? await engine.docker(["version", "--format", "{{.Server.Version}}"]))?.stdout.trimmingCharacters(
                                    in: .whitespacesAndNewlines) ?? "?")
                            let podman = Podman(
                                directory: directory.appendingPathComponent("podman"),
                                registriesConfiguration: crio.appendingPathComponent("50-archway.conf"))
                            for phase in ["online", "offline"] {
                                if phase == "offline" { await upstream.stop() }
                                for testCase in Self.cases {
                                    for architecture in Self.architectures {
                                        let expected = testCase.fixedArchitecture ?? architecture
                                        let reference = "docker.io/\(testCase.repository):\(testCase.tag)"
                                        let platform = "linux/\(architecture)"
                                        func check(_ client: String, _ pull: () async throws -> String) async {
                                            do {
                                                let got = try await pull()
                                                let outcome = got == expected ? "pass" : "FAIL: got \(got)"
                                                matrix.record(client, testCase.name, architecture, phase, outcome)
                                                #expect(got == expected, "\(client) \(phase) \(reference) \(platform)")
                                            } catch {
                                                matrix.record(client, testCase.name, architecture, phase, "FAIL")
                                                Issue.record("\(client) \(phase) \(reference) \(platform): \(error)")
                                            }
                                        }
                                        await check("containerd (ctr)") {
                                            _ = try? await containerd.removeImage(reference)
                                            let pull = try await containerd.pull(reference, hostsDir: containerdHosts, platform: platform)
                                            guard pull.succeeded else { throw HarnessError("\(pull)") }
                                            return try await containerd.imageConfigArchitecture(reference, platform: platform)
                                        }
                                        await check("podman") {
                                            _ = try await podman.podman(["rmi", "-f", reference])
                                            try await podman.podman(["pull", "-q", "--arch", architecture, reference]).requireSuccess()
                                            return try await podman.podman(["image", "inspect", "--format", "{{.Architecture}}", reference])
                                                .requireSuccess()
                                                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                                        }
                                        await check("docker") {
                                            _ = try await engine.docker(["rmi", "-f", reference])
                                            try await engine.docker(["pull", "-q", "--platform", platform, reference]).requireSuccess()
                                            return try await engine.docker(["image", "inspect", "--format", "{{.Architecture}}", reference])
                                                .requireSuccess()
                                                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                                        }
                                        await check("skopeo") {
                                            let layout = directory.appendingPathComponent(
                                                "skopeo-\(phase)-\(architecture)-\(testCase.tag)-\(testCase.repository.replacingOccurrences(of: "/", with: "-"))"
                                            )
                                            try await Skopeo.copy(
                                                from: "docker://\(archway.host)/\(testCase.repository):\(testCase.tag)",
                                                to: "oci:\(layout.path):x",
                                                arguments: ["--override-arch", architecture, "--src-tls-verify=false"]
                                            ).requireSuccess()
                                            return try Skopeo.image(inOCILayout: layout, tag: "x").architecture
                                        }
                                        await check("python-dxf") {
                                            try await python.pull(
                                                host: archway.host, repository: testCase.repository, tag: testCase.tag, platform: platform)
                                        }
                                    }
                                }
                            }
                            // Every client really came through Archway.
                            for agent in ["containerd/", "containers/", "docker/", "skopeo/", "python-requests/"] {
                                #expect(archway.output().contains(#""user_agent":"\#(agent)"#), "no request from \(agent)")
                            }
                            // Docker states its host platform: a Docker pull of an arm64-only image is a
                            // mismatch, a synthesized tag is not.
                            try await upstream.restart()
                            _ = try await engine.docker(["pull", "-q", "docker.io/library/armonly:1"])
                            let log = archway.output()
                            let events = log.split(separator: "\n").filter {
                                $0.contains(#""event":"arch_mismatch""#) && $0.contains("docker/")
                            }
                            #expect(
                                events.contains { $0.contains(#""repository":"docker.io/library/armonly""#) },
                                "docker's mismatch is recorded")
                            #expect(
                                !events.contains { $0.contains(#""repository":"docker.io/library/app""#) },
                                "a synthesized tag is no mismatch")
                        }
                    }
                }
            }
        }
        try Self.publish(matrix.markdown(clients: clients))
    }

    /// Writes the matrix into the README between its markers.
    static func publish(_ table: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = root.appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let begin = "<!-- client-matrix:begin -->"
        let end = "<!-- client-matrix:end -->"
        guard let start = text.range(of: begin), let stop = text.range(of: end), start.upperBound <= stop.lowerBound else { return }
        let updated = text[..<start.upperBound] + "\n" + table + "\n" + text[stop.lowerBound...]
        if updated != text { try String(updated).write(to: readme, atomically: true, encoding: .utf8) }
    }
}
