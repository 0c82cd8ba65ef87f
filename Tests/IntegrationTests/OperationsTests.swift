import ArchwayTesting
import Foundation
import Testing

/// Deploying Archway: TLS and HTTP/2, generated client configuration, systemd, reload, drain,
/// metrics, readiness and prefetch, with the real binary.
@Suite(.serialized) struct OperationsTests {
    @Test func tlsWithHTTP2ForSkopeoCurlAndCtrThroughGeneratedHostsToml() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            try await withTemporaryDirectory { directory in
                let pki = try await TestCertificates.make(in: directory)
                let tls = "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.serverKey.path)\n"
                try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: tls), tls: true) { archway in
                    // skopeo trusts the test CA through --src-cert-dir.
                    let certs = directory.appendingPathComponent("certs")
                    try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
                    try FileManager.default.copyItem(at: pki.caCertificate, to: certs.appendingPathComponent("ca.crt"))
                    let inspect = try await Skopeo.inspectRaw(
                        "docker://\(archway.host)/registry.test/test/multi:1.0", arguments: ["--cert-dir", certs.path]
                    ).requireSuccess()
                    #expect(sha256Digest(inspect.stdoutData) == images.multi.digest)

                    let http2 = try await run(
                        try requireProgram("curl"),
                        [
                            "-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--http2", "--cacert", pki.caCertificate.path,
                            "\(archway.url)/v2/",
                        ]
                    ).requireSuccess()
                    #expect(http2.stdout == "2 200")

                    // containerd through the hosts.toml that `archway mirrors containerd` writes.
                    let file = directory.appendingPathComponent("archway.yaml")
                    try singleUpstreamConfiguration(upstream.url).write(to: file, atomically: true, encoding: .utf8)
                    let hosts = directory.appendingPathComponent("certs.d")
                    try await run(
                        try ArchwayProcess.binaryPath(),
                        [
                            "mirrors", "containerd", "--url", archway.url, "--config", file.path, "--ca", pki.caCertificate.path,
                            "--platform", "linux/arm64", "--write", hosts.path,
                        ]
                    ).requireSuccess()
                    let generated = try String(contentsOf: hosts.appendingPathComponent("registry.test/hosts.toml"), encoding: .utf8)
                    #expect(generated.contains(#"Archway-Platform = ["linux/arm64"]"#))
                    try await withContainerd { containerd in
                        let pull = try await containerd.pull(
                            "registry.test/test/multi:1.0", hostsDir: hosts, platform: "linux/arm64", plainHTTP: false)
                        #expect(pull.succeeded, "\(pull)")
                        #expect(
                            try await containerd.imageConfigArchitecture("registry.test/test/multi:1.0", platform: "linux/arm64") == "arm64"
                        )
                    }
                    #expect(archway.output().contains(#""user_agent":"containerd/"#), "ctr came through Archway")
                    // A client that asks for HTTP/1.1 is logged as such.
                    let http1 = try await run(
                        try requireProgram("curl"),
                        [
                            "-s", "-o", "/dev/null", "--http1.1", "-A", "forced-http1/1", "--cacert", pki.caCertificate.path,
                            "\(archway.url)/v2/",
                        ])
                    #expect(http1.succeeded, "\(http1)")
                    // Which protocol each client negotiated over TLS (the access log's `proto`).
                    var negotiated: [String: Set<String>] = [:]
                    for line in archway.output().split(separator: "\n") where line.contains(#""msg":"request""#) {
                        guard let fields = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String],
                            let agent = fields["user_agent"]?.split(separator: "/").first, let proto = fields["proto"]
                        else { continue }
                        negotiated[String(agent), default: []].insert(proto)
                    }
                    print("protocols negotiated over TLS: \(negotiated.sorted { $0.key < $1.key })")
                    // curl takes HTTP/2 when it is offered; containers/image and containerd build
                    // their own Go transports, which offer only HTTP/1.1 in their ALPN.
                    #expect(
                        negotiated["curl"] == ["h2"] && negotiated["containerd"] == ["http/1.1"] && negotiated["skopeo"] == ["http/1.1"]
                            && negotiated["forced-http1"] == ["http/1.1"],
                        "\(negotiated)")
                }

                // Client certificates: only clients the CA signed get in.
                let mutual = tls + "  client-ca: \(pki.caCertificate.path)\n"
                try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: mutual), tls: true) {
                    archway in
                    let curl = try requireProgram("curl")
                    let anonymous = try await run(
                        curl, ["-s", "-o", "/dev/null", "--cacert", pki.caCertificate.path, "\(archway.url)/v2/"])
                    #expect(!anonymous.succeeded, "a client without a certificate is refused")
                    let admitted = try await run(
                        curl,
                        [
                            "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", pki.caCertificate.path, "--cert",
                            pki.clientCertificate.path,
                            "--key", pki.clientKey.path, "\(archway.url)/v2/",
                        ]
                    )
                    #expect(admitted.stdout == "200")
                }

                // A key that is not the certificate's stops start-up with a clear message.
                let wrong = "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.strayKey.path)\n"
                let file = directory.appendingPathComponent("wrong.yaml")
                try
                    ("listen: 127.0.0.1:\(try freeLoopbackPort())\nstorage:\n  path: \(directory.appendingPathComponent("s").path)\n"
                    + singleUpstreamConfiguration(upstream.url, extra: wrong)).write(to: file, atomically: true, encoding: .utf8)
                let refused = try await run(
                    try ArchwayProcess.binaryPath(), ["serve", "--config", file.path, "--log-format", "json"], timeout: .seconds(30))
                #expect(refused.exitCode != 0)
                #expect(refused.stderr.contains("cannot serve together"), "\(refused.stderr)")
            }
        }
    }

    @Test func systemdAnalyzeAcceptsTheUnit() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let unit = try String(contentsOf: root.appendingPathComponent("systemd/archway.service"), encoding: .utf8)
        try await withTemporaryDirectory { directory in
            // verify checks that ExecStart exists: point it at the binary just built.
            let file = directory.appendingPathComponent("archway.service")
            try unit.replacingOccurrences(of: "/usr/local/bin/archway", with: try ArchwayProcess.binaryPath())
                .write(to: file, atomically: true, encoding: .utf8)
            let verify = try await run(try requireProgram("systemd-analyze"), ["verify", file.path])
            #expect(verify.succeeded, "\(verify)")
            #expect(!verify.stderr.contains("archway.service:"), "\(verify.stderr)")
        }
        #expect(unit.contains("Type=notify") && unit.contains("DynamicUser=yes") && unit.contains("ExecReload="))
    }

    /// `event-loops:` sets how many threads answer connections (one per core by default), as
    /// nginx's `worker_processes` does; the listening line says how many.
    @Test func eventLoopsSetTheThreadsThatAnswer() async throws {
        try await withUpstreamRegistry { upstream in
            for loops in [1, 3] {
                let configuration = singleUpstreamConfiguration(upstream.url) + "event-loops: \(loops)\n"
                try await withArchwayProcess(configuration: configuration) { archway in
                    #expect(try await httpRequest("GET", archway.url + "/v2/").status == 200)
                    let pid = try #require(archway.pid)
                    let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
                    let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8) }
                    // NIO names its event loop threads NIO-SGLTN-<group>-#<n>.
                    #expect(names.filter { $0.hasPrefix("NIO-SGLTN-") }.count == loops, "\(names.sorted())")
                    #expect(archway.output().contains(#""event-loops":"\#(loops)""#), "the listening line says so")
                }
            }
        }
    }

    @Test func sighupReloadsPoliciesAndABrokenPolicyKeepsTheOldOnes() async throws {
        try await withUpstreamRegistry { upstream in
            let uploader = RegistryUploader(upstream)
            let amd = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "amd64-1.0", platform: .linuxAMD64, format: .oci)
            let arm = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "arm64-1.0", platform: .linuxARM64, format: .oci)
            try await withTemporaryDirectory { directory in
                let policies = directory.appendingPathComponent("policies")
                try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
                let file = policies.appendingPathComponent("app.yaml")
                let rule = { (members: String) in "rules:\n  - repository: registry.test/test/app\n    members:\n\(members)" }
                try rule("      - from: \"{repository}:amd64-{tag}\"\n").write(to: file, atomically: true, encoding: .utf8)
                try await withArchwayProcess(
                    configuration: singleUpstreamConfiguration(upstream.url, extra: "policies: \(policies.path)\n")
                ) {
                    archway in
                    let url = "\(archway.url)/v2/registry.test/test/app/manifests/1.0"
                    let accept = ["Accept": "application/vnd.oci.image.index.v1+json"]
                    let before = try await httpRequest("GET", url, headers: accept)
                    #expect(before.bodyText.contains(amd.manifestDigest) && !before.bodyText.contains(arm.manifestDigest))

                    try rule("      - from: \"{repository}:amd64-{tag}\"\n      - from: \"{repository}:arm64-{tag}\"\n")
                        .write(to: file, atomically: true, encoding: .utf8)
                    archway.signal(SIGHUP)
                    try await waitUntil(timeout: .seconds(10), "the reload") { archway.output().contains("policies reloaded") }
                    let after = try await httpRequest("GET", url, headers: accept)
                    #expect(after.bodyText.contains(amd.manifestDigest) && after.bodyText.contains(arm.manifestDigest))

                    try rule("      - from: \"{repository}:{arch}\"\n").write(to: file, atomically: true, encoding: .utf8)
                    archway.signal(SIGHUP)
                    try await waitUntil(timeout: .seconds(10), "the refused reload") { archway.output().contains("policy reload refused") }
                    #expect(archway.output().contains("app.yaml:4: from: unknown placeholder {arch}"))
                    let kept = try await httpRequest("GET", url, headers: accept)
                    #expect(kept.header("docker-content-digest") == after.header("docker-content-digest"))
                    #expect(archway.isRunning)
                }
            }
        }
    }

    @Test func sigtermLetsARunningDownloadFinishAndExitsZero() async throws {
        try await withUpstreamRegistry { upstream in
            let blob = try await RegistryUploader(upstream).pushBlob(
                repository: "test/drain", data: Data((0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            )
            let proxy = try await FaultInjectingProxy.start(upstream: upstream.url)
            let archway = try await ArchwayProcess.start(configuration: singleUpstreamConfiguration(proxy.url))
            proxy.setBlobFault(.holdAfter(1 << 20))
            let download = Task { try await CacheEnvironment.fetch("\(archway.url)/v2/registry.test/test/drain/blobs/\(blob.digest)") }
            try await waitUntil(timeout: .seconds(20), "the download to start") { CacheEnvironment.temporaryFiles(archway).count == 1 }
            archway.signal(SIGTERM)
            try await waitUntil(timeout: .seconds(20), "the shutdown to begin") { archway.output().contains("shutting down:") }
            proxy.release()
            let result = try await download.value
            #expect(result.digest == blob.digest, "the download in flight finished")
            #expect(await archway.waitForExit(timeout: .seconds(60)) == 0)
            #expect(FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, blob.digest).path))
            // A clean shutdown logs no error (it used to log `eviction failed` with a cancellation).
            let errors = archway.output().split(separator: "\n").filter { $0.contains(#""level":"error""#) }
            #expect(errors.isEmpty, "\(errors)")
            await proxy.stop()
            await archway.close()
        }
    }

    /// The same over TLS and HTTP/2 (Archway's own HTTP/2 connection): SIGTERM sends GOAWAY,
    /// lets the open stream finish, then closes and exits 0.
    @Test func sigtermLetsAnHTTP2DownloadFinish() async throws {
        try await withUpstreamRegistry { upstream in
            let data = Data((0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 5) })
            let blob = try await RegistryUploader(upstream).pushBlob(repository: "test/drain", data: data)
            let proxy = try await FaultInjectingProxy.start(upstream: upstream.url)
            try await withTemporaryDirectory { directory in
                let pki = try await TestCertificates.make(in: directory)
                let tls = "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.serverKey.path)\n"
                let archway = try await ArchwayProcess.start(configuration: singleUpstreamConfiguration(proxy.url, extra: tls), tls: true)
                proxy.setBlobFault(.holdAfter(1 << 20))
                let output = directory.appendingPathComponent("blob")
                let curl = try requireProgram("curl")
                let url = "\(archway.url)/v2/registry.test/test/drain/blobs/\(blob.digest)"
                let download = Task {
                    try await run(
                        curl,
                        [
                            "-s", "--http2", "--cacert", pki.caCertificate.path, "-o", output.path, "-w", "%{http_version} %{http_code}",
                            url,
                        ],
                        timeout: .seconds(60))
                }
                try await waitUntil(timeout: .seconds(20), "the download to start") { CacheEnvironment.temporaryFiles(archway).count == 1 }
                archway.signal(SIGTERM)
                try await waitUntil(timeout: .seconds(20), "the shutdown to begin") { archway.output().contains("shutting down:") }
                proxy.release()
                let result = try await download.value
                #expect(result.stdout == "2 200", "\(result)")
                #expect(try Data(contentsOf: output) == data, "the stream in flight finished")
                #expect(await archway.waitForExit(timeout: .seconds(60)) == 0)
                await proxy.stop()
                await archway.close()
            }
        }
    }

    /// A download nobody waits for any more is still finished on SIGTERM: the server's
    /// downloads belong to a service that shutdown waits for, not to the request.
    @Test func sigtermFinishesADownloadWhoseClientLeft() async throws {
        try await withUpstreamRegistry { upstream in
            let blob = try await RegistryUploader(upstream).pushBlob(
                repository: "test/orphan", data: Data((0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            )
            let proxy = try await FaultInjectingProxy.start(upstream: upstream.url)
            let archway = try await ArchwayProcess.start(configuration: singleUpstreamConfiguration(proxy.url))
            proxy.setBlobFault(.holdAfter(1 << 20))
            // A client that takes the first bytes and leaves (RST), while the upstream holds the rest.
            let script = """
                import socket, sys
                host, port = sys.argv[1].rsplit(":", 1)
                s = socket.create_connection((host, int(port)))
                s.sendall(("GET " + sys.argv[2] + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n").encode())
                s.recv(65536)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
                s.close()
                """
            let address = archway.url.replacingOccurrences(of: "http://", with: "")
            let path = "/v2/registry.test/test/orphan/blobs/\(blob.digest)"
            _ = try await run(try requireProgram("python3"), ["-c", script, address, path], timeout: .seconds(30))
            try await waitUntil(timeout: .seconds(20), "the client to be gone") {
                AccessLogTests.accessLines(archway, path: path).first?["end"] == "client-gone"
            }
            #expect(CacheEnvironment.temporaryFiles(archway).count == 1, "the download goes on without its client")
            archway.signal(SIGTERM)
            try await waitUntil(timeout: .seconds(20), "the shutdown to wait for the download") {
                archway.output().contains("waiting for downloads to finish")
            }
            proxy.release()
            #expect(await archway.waitForExit(timeout: .seconds(60)) == 0)
            #expect(FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, blob.digest).path), "finished and kept")
            #expect(CacheEnvironment.temporaryFiles(archway).isEmpty)
            await proxy.stop()
            await archway.close()
        }
    }

    @Test func metricsMoveAsAPullHappensAndReadinessIsReported() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url)) { archway in
                #expect(try await httpRequest("GET", "\(archway.url)/_archway/ready").status == 200)
                #expect(try await httpRequest("GET", "\(archway.url)/_archway/health").status == 200)
                let before = try PrometheusText.parse(try await httpRequest("GET", "\(archway.url)/metrics").bodyText)
                let layer = images.singleAMD64.layers[0]
                for _ in 0..<2 {
                    _ = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/single/blobs/\(layer.digest)")
                }
                // A method outside the usual set (llhttp refuses unknown ones itself) counts as OTHER.
                #expect(try await HTTPSurfaceTests.curl(["-X", "PROPFIND", "\(archway.url)/v2/"]).status == 405)
                let after = try PrometheusText.parse(try await httpRequest("GET", "\(archway.url)/metrics").bodyText)
                #expect(after[#"archway_requests_total{method="OTHER",route="base",status="405"}"#] == 1)
                #expect(!after.keys.contains { $0.contains("PROPFIND") })
                let blobRequests = #"archway_requests_total{method="GET",route="blob",status="200"}"#
                #expect((after[blobRequests] ?? 0) - (before[blobRequests] ?? 0) == 2)
                #expect(after[#"archway_cache_requests_total{kind="blob",result="miss"}"#] == 1)
                #expect(after[#"archway_cache_requests_total{kind="blob",result="hit"}"#] == 1)
                #expect((after["archway_upstream_bytes_total"] ?? 0) >= Double(layer.size))
                #expect((after["archway_client_bytes_total"] ?? 0) >= Double(2 * layer.size))
                #expect(after.keys.contains { $0.hasPrefix("archway_upstream_requests_total{") })
                #expect(after["archway_cache_size_bytes"] ?? 0 >= Double(layer.size))
            }
        }
    }

    @Test func prefetchThenOfflineServesEveryPlatform() async throws {
        try await withUpstreamRegistry { upstream in
            _ = try await StandardImages.seed(upstream)
            try await withTemporaryDirectory { directory in
                let storage = directory.appendingPathComponent("storage")
                let file = directory.appendingPathComponent("archway.yaml")
                try ("storage:\n  path: \(storage.path)\n" + singleUpstreamConfiguration(upstream.url)).write(
                    to: file, atomically: true, encoding: .utf8)
                let prefetch = try await run(
                    try ArchwayProcess.binaryPath(), ["prefetch", "--config", file.path, "registry.test/test/multi:1.0"]
                )
                .requireSuccess()
                #expect(prefetch.stdout.contains("registry.test/test/multi:1.0: 2 image(s)"), "\(prefetch.stdout)")
                let missing = try await run(
                    try ArchwayProcess.binaryPath(), ["prefetch", "--config", file.path, "registry.test/test/nothing:1"])
                #expect(missing.exitCode == 1)
                await upstream.stop()
                let archway = try await ArchwayProcess.start(
                    configuration: singleUpstreamConfiguration(upstream.url, extra: "offline: true\n"), storage: storage)
                for arch in ["amd64", "arm64"] {
                    let layout = directory.appendingPathComponent(arch)
                    try await Skopeo.copy(
                        from: "docker://\(archway.host)/registry.test/test/multi:1.0", to: "oci:\(layout.path):x",
                        arguments: ["--override-arch", arch, "--src-tls-verify=false"]
                    ).requireSuccess()
                    #expect(try Skopeo.image(inOCILayout: layout, tag: "x").architecture == arch)
                }
                await archway.close()
                try await upstream.restart()
            }
        }
    }
}

/// The samples of a Prometheus text exposition, by `name{labels}` as printed.
enum PrometheusText {
    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw HarnessError("not Prometheus text: \(line)")
            }
            var key = String(line[..<space])
            // Labels in a fixed (sorted) order, whatever order the exporter printed them in.
            if let open = key.firstIndex(of: "{"), key.hasSuffix("}") {
                let labels = key[key.index(after: open)..<key.index(before: key.endIndex)].split(separator: ",").sorted()
                key = String(key[..<open]) + "{" + labels.joined(separator: ",") + "}"
            }
            samples[key] = value
        }
        return samples
    }
}
