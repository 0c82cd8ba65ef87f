import ArchwayTesting
import Foundation
import Testing

/// The proxy mode (`proxy:`) against the real binary: real clients with `HTTPS_PROXY` pull
/// `ghcr.io/...` and `quay.io/...` names served by local registries configured under those
/// names; the listener refuses what it must before dialling anything; the CA cannot sign for
/// other names.
@Suite(.serialized) struct ProxyModeTests {
    /// The configuration (without `listen` and `storage`, which ``ArchwayProcess`` adds), the
    /// proxy's port, and the CA `archway ca init` wrote for it.
    struct Fixture {
        let configuration: String
        let configurationFile: URL
        let proxyPort: Int
        let ca: URL
        let caKey: URL
        var proxyURL: String { "http://127.0.0.1:\(proxyPort)" }
        /// What a client needs to use the proxy and trust its CA (Go reads `SSL_CERT_FILE`).
        var clientEnvironment: [String: String] {
            ["HTTPS_PROXY": proxyURL, "https_proxy": proxyURL, "SSL_CERT_FILE": ca.path, "NO_PROXY": "", "no_proxy": ""]
        }

        static func make(
            ghcr: String, quay: String, in directory: URL, policies: URL? = nil, tunnel: [String] = [], extra: String = "",
            proxyExtra: String = "", proxyPort: Int? = nil, moreUpstreams: String = ""
        ) async throws -> Fixture {
            let proxyPort = try proxyPort ?? freeLoopbackPort()
            let ca = directory.appendingPathComponent("proxy-ca.crt")
            let key = directory.appendingPathComponent("proxy-ca.key")
            var configuration = """
                upstreams:
                  - name: ghcr.io
                    url: \(ghcr)
                  - name: quay.io
                    url: \(quay)
                \(moreUpstreams)default-upstream: ghcr.io
                proxy:
                  listen: 127.0.0.1:\(proxyPort)
                  ca: {certificate: \(ca.path), key: \(key.path)}

                """
            if !tunnel.isEmpty { configuration += "  tunnel: [\(tunnel.map { "\"\($0)\"" }.joined(separator: ", "))]\n" }
            configuration += proxyExtra
            if let policies { configuration += "policies: \(policies.path)\n" }
            configuration += extra
            let file = directory.appendingPathComponent("archway.yaml")
            try configuration.write(to: file, atomically: true, encoding: .utf8)
            if !FileManager.default.fileExists(atPath: key.path) {
                try await run(try ArchwayProcess.binaryPath(), ["ca", "init", "--config", file.path]).requireSuccess()
            }
            return Fixture(configuration: configuration, configurationFile: file, proxyPort: proxyPort, ca: ca, caKey: key)
        }
    }

    /// Sends raw bytes to the proxy listener; its answer as `hostile_clients.py proxy-head` reports it.
    static func exchange(_ port: Int, _ text: String) async throws -> [String: Any] {
        let hex = text.utf8.map { String(format: "%02x", $0) }.joined()
        return HostileClients.report(try await HostileClients.run(["proxy-head", "127.0.0.1", "\(port)", hex])) ?? [:]
    }

    @Test func dockerPodmanAndSkopeoPullRegistryNamesThroughTheProxyOnlineAndOffline() async throws {
        try await withUpstreamRegistry { ghcr in
            try await withUpstreamRegistry { quay in
                let ghcrUploader = RegistryUploader(ghcr)
                let quayUploader = RegistryUploader(quay)
                _ = try await ImageBuilder.pushImage(
                    to: ghcrUploader, repository: "org/single", tag: "1.0", platform: .linuxAMD64, format: .docker)
                _ = try await ImageBuilder.pushImage(
                    to: ghcrUploader, repository: "org/app", tag: "amd64-1.0", platform: .linuxAMD64, format: .docker)
                _ = try await ImageBuilder.pushImage(
                    to: ghcrUploader, repository: "org/app", tag: "arm64-1.0", platform: .linuxARM64, format: .docker)
                _ = try await ImageBuilder.pushIndex(
                    to: quayUploader, repository: "org/multi", tag: "1.0",
                    children: [
                        try await ImageBuilder.pushImage(
                            to: quayUploader, repository: "org/multi", tag: nil, platform: .linuxAMD64, format: .oci),
                        try await ImageBuilder.pushImage(
                            to: quayUploader, repository: "org/multi", tag: nil, platform: .linuxARM64, format: .oci),
                    ],
                    format: .oci)
                try await withTemporaryDirectory(prefix: "awpx") { directory in
                    let policies = try writePolicies(
                        """
                        rules:
                          - name: app
                            repository: ghcr.io/org/app
                            members:
                              - from: "{repository}:amd64-{tag}"
                              - from: "{repository}:arm64-{tag}"
                        """, in: directory)
                    let fixture = try await Fixture.make(ghcr: ghcr.url, quay: quay.url, in: directory, policies: policies)
                    try await withArchwayProcess(configuration: fixture.configuration) { archway in
                        // `archway mirrors docker --proxy` writes the drop-in dockerd runs with here.
                        let generated = directory.appendingPathComponent("docker")
                        try await run(
                            try ArchwayProcess.binaryPath(),
                            [
                                "mirrors", "docker", "--proxy", fixture.proxyURL, "--ca", fixture.ca.path, "--config",
                                fixture.configurationFile.path, "--write", generated.path,
                            ]
                        ).requireSuccess()
                        let dropIn = try String(
                            contentsOf: generated.appendingPathComponent("docker.service.d/http-proxy.conf"), encoding: .utf8)
                        var dockerEnvironment: [String: String] = ["SSL_CERT_FILE": fixture.ca.path, "no_proxy": ""]
                        for line in dropIn.split(separator: "\n") where line.hasPrefix("Environment=\"") {
                            let pair = line.dropFirst("Environment=\"".count).dropLast()
                            let parts = pair.split(separator: "=", maxSplits: 1)
                            dockerEnvironment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
                        }
                        #expect(dockerEnvironment["HTTPS_PROXY"] == fixture.proxyURL, "\(dropIn)")
                        #expect(
                            try String(contentsOf: generated.appendingPathComponent("certs.d/quay.io/ca.crt"), encoding: .utf8)
                                == String(contentsOf: fixture.ca, encoding: .utf8))
                        let daemon = directory.appendingPathComponent("daemon.json")
                        try "{}\n".write(to: daemon, atomically: true, encoding: .utf8)
                        let emptyRegistries = directory.appendingPathComponent("registries.conf")
                        try "".write(to: emptyRegistries, atomically: true, encoding: .utf8)
                        let podman = Podman(
                            directory: directory.appendingPathComponent("podman"), registriesConfiguration: emptyRegistries,
                            environment: fixture.clientEnvironment)
                        // A single-arch image, an upstream index, a synthesized tag.
                        let online: [(String, String, String)] = [
                            ("ghcr.io/org/single:1.0", "amd64", "amd64"),
                            ("quay.io/org/multi:1.0", "amd64", "amd64"), ("quay.io/org/multi:1.0", "arm64", "arm64"),
                            ("ghcr.io/org/app:1.0", "amd64", "amd64"), ("ghcr.io/org/app:1.0", "arm64", "arm64"),
                        ]
                        try await withDockerEngine(daemonConfiguration: daemon, environment: dockerEnvironment) { engine in
                            for phase in ["online", "offline"] {
                                if phase == "offline" {
                                    await ghcr.stop()
                                    await quay.stop()
                                }
                                for (index, (reference, architecture, expected)) in online.enumerated() {
                                    let layout = directory.appendingPathComponent("skopeo-\(phase)-\(index)")
                                    let copy = try await Skopeo.copy(
                                        from: "docker://\(reference)", to: "oci:\(layout.path):x",
                                        arguments: ["--override-arch", architecture],
                                        environment: fixture.clientEnvironment)
                                    #expect(copy.succeeded, "skopeo \(phase) \(reference) \(architecture): \(copy)")
                                    if copy.succeeded {
                                        #expect(try Skopeo.image(inOCILayout: layout, tag: "x").architecture == expected)
                                    }

                                    _ = try await podman.podman(["rmi", "-f", reference])
                                    let pulled = try await podman.podman(["pull", "-q", "--arch", architecture, reference])
                                    #expect(pulled.succeeded, "podman \(phase) \(reference) \(architecture): \(pulled)")
                                    let podmanArchitecture = try await podman.podman(
                                        ["image", "inspect", "--format", "{{.Architecture}}", reference])
                                    #expect(podmanArchitecture.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected)

                                    _ = try await engine.docker(["rmi", "-f", reference])
                                    let dockerPull = try await engine.docker([
                                        "pull", "-q", "--platform", "linux/\(architecture)", reference,
                                    ])
                                    #expect(
                                        dockerPull.succeeded,
                                        "docker \(phase) \(reference) \(architecture): \(dockerPull)\n\(engine.output())")
                                    let dockerArchitecture = try await engine.docker(
                                        ["image", "inspect", "--format", "{{.Architecture}}", reference])
                                    #expect(dockerArchitecture.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
                                }
                            }
                        }
                        // Each client's requests went through the tunnel to Archway's mirror path.
                        let log = archway.output().split(separator: "\n")
                        let tunnelled = log.filter { $0.contains(#""via":"proxy "#) }
                        var protocols: [String: Set<String>] = [:]
                        for line in tunnelled {
                            guard let fields = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String],
                                let agent = fields["user_agent"]?.split(separator: "/").first, let proto = fields["proto"]
                            else { continue }
                            protocols[String(agent), default: []].insert(proto)
                        }
                        print("requests inside proxy tunnels: \(tunnelled.count), protocols: \(protocols.sorted { $0.key < $1.key })")
                        // What the README says of them: the Go clients stay on HTTP/1.1 in the tunnel.
                        #expect(
                            protocols["docker"] == ["http/1.1"] && protocols["containers"] == ["http/1.1"]
                                && protocols["skopeo"] == ["http/1.1"], "\(protocols)")
                        for agent in ["docker/", "containers/", "skopeo/"] {
                            #expect(
                                log.contains {
                                    $0.contains(#""msg":"request""#) && $0.contains(#""via":"proxy ghcr.io""#) && $0.contains(agent)
                                },
                                "no request from \(agent) inside a ghcr.io tunnel")
                        }
                        #expect(log.contains { $0.contains(#""via":"proxy quay.io""#) && $0.contains(#""cache":"HIT""#) })
                        #expect(log.contains { $0.contains(#""outcome":"intercept""#) && $0.contains(#""target":"quay.io:443""#) })
                        // The synthesized index came from the policy.
                        #expect(
                            log.contains { $0.contains("synthesiz") && $0.contains("ghcr.io/org/app") }, "the policy's index was served")
                    }
                }
            }
        }
    }

    @Test func theListenerRefusesBeforeDiallingAndTunnelsOnlyWhatItLists() async throws {
        let witness = try EchoServer()
        let echo = try EchoServer()
        defer {
            witness.stop()
            echo.stop()
        }
        try await withUpstreamRegistry { ghcr in
            let images = try await StandardImages.seed(ghcr)
            try await withTemporaryDirectory(prefix: "awph") { directory in
                // A tunnel entry that names the proxy's own port: refused all the same.
                let proxyPort = try freeLoopbackPort()
                let fixture = try await Fixture.make(
                    ghcr: ghcr.url, quay: ghcr.url, in: directory,
                    tunnel: ["localhost:\(echo.port)", "localhost:\(proxyPort)", "*.unresolvable.invalid"], proxyPort: proxyPort,
                    moreUpstreams: "  - name: ports.test:5443\n    url: \(ghcr.url)\n")
                try await withArchwayProcess(configuration: fixture.configuration) { archway in
                    try await waitUntil(timeout: .seconds(10), "the proxy listener") {
                        archway.output().contains("proxy listening")
                    }
                    let port = fixture.proxyPort
                    // Refused, with the status a client can act on, and nothing dialled.
                    let refusals: [(String, Int)] = [
                        ("CONNECT localhost:\(witness.port) HTTP/1.1\r\nHost: localhost\r\n\r\n", 403),  // not listed
                        ("CONNECT 127.0.0.1:\(witness.port) HTTP/1.1\r\n\r\n", 403),  // an address
                        ("CONNECT [::1]:\(witness.port) HTTP/1.1\r\n\r\n", 403),
                        ("CONNECT 2130706433:\(witness.port) HTTP/1.1\r\n\r\n", 403),  // 127.0.0.1 spelled as a number
                        ("CONNECT localhost:\(port) HTTP/1.1\r\n\r\n", 403),  // the proxy itself
                        ("CONNECT ghcr.io:22 HTTP/1.1\r\n\r\n", 403),  // a configured name, another port
                        ("CONNECT ghcr.io:99999 HTTP/1.1\r\n\r\n", 400),
                        ("CONNECT ghcr.io:0 HTTP/1.1\r\n\r\n", 400),
                        ("CONNECT ghcr.io HTTP/1.1\r\n\r\n", 400),
                        ("CONNECT ghcr.io:443 HTTP/1.1 extra\r\n\r\n", 400),
                        ("CONNECT gh\u{01}cr.io:443 HTTP/1.1\r\n\r\n", 400),
                        ("CONNECT -ghcr.io:443 HTTP/1.1\r\n\r\n", 400),
                        ("CONNECT ghcr.io:443 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
                        ("CONNECT ghcr.io:443 HTTP/1.1\r\n folded\r\n\r\n", 400),
                        ("CONNECT ghcr.io:443 HTTP/1.1\r\nX-Long: \(String(repeating: "a", count: 9000))\r\n\r\n", 431),
                        ("GARBAGE\r\n\r\n", 400),
                        ("GET /v2/ HTTP/1.1\r\nHost: ghcr.io\r\n\r\n", 400),  // not a proxy request
                        ("POST http://ghcr.io/v2/ HTTP/1.1\r\nHost: ghcr.io\r\n\r\n", 405),
                        ("GET http://localhost:\(witness.port)/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 403),
                        ("CONNECT a.unresolvable.invalid:443 HTTP/1.1\r\n\r\n", 502),  // listed, but no such host
                    ]
                    for (request, status) in refusals {
                        let answer = try await Self.exchange(port, request)
                        #expect(answer["status"] as? Int == status, "\(request.prefix(60).debugDescription): \(answer)")
                        #expect(answer["closed"] as? Bool == true, "\(request.prefix(60).debugDescription) leaves the connection open")
                    }
                    #expect(witness.connections == 0, "a refused CONNECT dialled its target")
                    #expect(archway.output().contains("is this proxy's own listener"))

                    // A listed host gets its bytes untouched, including bytes sent with the head.
                    let tunnel = HostileClients.report(
                        try await HostileClients.run([
                            "proxy-tunnel", "127.0.0.1", "\(port)", "localhost:\(echo.port)", "--bytes", "\(4 << 20)",
                        ]))
                    #expect(tunnel?["status"] as? Int == 200, "\(tunnel ?? [:])")
                    #expect(tunnel?["equal"] as? Bool == true, "\(tunnel ?? [:])")
                    #expect(echo.connections == 1)

                    // Absolute-form plain HTTP to a configured plain-HTTP upstream is the mirror;
                    // a request on that connection for another host is not.
                    let plain = try await Self.exchange(
                        port, "GET http://ghcr.io/v2/ HTTP/1.1\r\nHost: ghcr.io\r\nConnection: close\r\n\r\n")
                    #expect(plain["status"] as? Int == 200, "\(plain)")
                    let otherHost = try await Self.exchange(
                        port, "GET http://ghcr.io/v2/ HTTP/1.1\r\nHost: quay.io\r\nConnection: close\r\n\r\n")
                    #expect(otherHost["status"] as? Int == 403, "\(otherHost)")

                    // A ClientHello for another name than the CONNECT's: closed, no certificate.
                    let openssl = try requireProgram("openssl")
                    let mismatch = try await run(
                        openssl,
                        [
                            "s_client", "-proxy", "127.0.0.1:\(port)", "-connect", "ghcr.io:443", "-servername", "quay.io", "-CAfile",
                            fixture.ca.path, "-verify_return_error", "-brief",
                        ], timeout: .seconds(20))
                    #expect(!mismatch.stdout.contains("Verification: OK") && !mismatch.stderr.contains("Verification: OK"), "\(mismatch)")
                    #expect(archway.output().contains("TLS name differs from the CONNECT"))
                    // The same with the right name: the leaf verifies against the constrained CA.
                    let matching = try await run(
                        openssl,
                        [
                            "s_client", "-proxy", "127.0.0.1:\(port)", "-connect", "ghcr.io:443", "-servername", "ghcr.io", "-CAfile",
                            fixture.ca.path, "-verify_return_error", "-verify_hostname", "ghcr.io", "-brief",
                        ], timeout: .seconds(20))
                    #expect((matching.stdout + matching.stderr).contains("Verification: OK"), "\(matching)")

                    // Inside a tunnel the CONNECTed name is the upstream, whatever the path says.
                    let curl = try requireProgram("curl")
                    let manifest = "\(images.multi.repository)/manifests/\(images.multi.tag ?? "1.0")"
                    func status(through url: String) async throws -> String {
                        try await run(
                            curl,
                            [
                                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--proxy", fixture.proxyURL, "--cacert", fixture.ca.path,
                                "-H", "Accept: application/vnd.oci.image.index.v1+json", url,
                            ]
                        ).stdout
                    }
                    #expect(try await status(through: "https://ghcr.io/v2/\(manifest)?ns=docker.io") == "200")
                    #expect(witness.connections == 0)
                    // HTTP/2 and HTTP/1.1 inside the tunnel, as the client asks; the manifest is
                    // warm now, and both answer it on the event loop, bound to the tunnel's upstream.
                    let warmBefore = try await WarmPathTests.warmAnswers(archway)
                    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
                        let negotiated = try await run(
                            curl,
                            [
                                "-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", flag, "--proxy", fixture.proxyURL,
                                "--cacert",
                                fixture.ca.path, "-H", "Accept: application/vnd.oci.image.index.v1+json", "https://ghcr.io/v2/\(manifest)",
                            ])
                        #expect(negotiated.stdout == "\(version) 200", "\(flag): \(negotiated)")
                    }
                    #expect(try await WarmPathTests.warmAnswers(archway) == warmBefore + 2)
                    // An upstream named with a port is reached on that port, and routed by that name.
                    #expect(try await status(through: "https://ports.test:5443/v2/\(manifest)") == "200")
                    #expect(archway.output().contains(#""via":"proxy ports.test:5443""#))

                    // Each decision is counted.
                    let metrics = try await run(curl, ["-s", "\(archway.url)/metrics"]).stdout
                    func counted(_ outcome: String) -> Int {
                        metrics.split(separator: "\n").first { $0.hasPrefix("archway_proxy_requests_total{outcome=\"\(outcome)\"}") }
                            .flatMap { $0.split(separator: " ").last.flatMap { Int($0) } } ?? 0
                    }
                    #expect(counted("refused") >= refusals.count && counted("tunnel") == 1 && counted("intercept") >= 2, "\(metrics)")
                }

                // With proxy.authenticate, credentials first: 407 without, 200 with.
                let htpasswd = try Robots.htpasswd(in: directory)
                let authenticated = try await Fixture.make(
                    ghcr: ghcr.url, quay: ghcr.url, in: directory, extra: "auth:\n  htpasswd: \(htpasswd.path)\n  required: true\n",
                    proxyExtra: "  authenticate: true\n")
                try await withArchwayProcess(configuration: authenticated.configuration) { archway in
                    try await waitUntil(timeout: .seconds(10), "the proxy listener") { archway.output().contains("proxy listening") }
                    let curl = try requireProgram("curl")
                    let arguments = [
                        "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_connect}", "--proxy", authenticated.proxyURL, "--cacert",
                        authenticated.ca.path,
                    ]
                    let anonymous = try await run(curl, arguments + ["https://ghcr.io/v2/"])
                    #expect(anonymous.stdout.hasSuffix("407"), "\(anonymous)")
                    let wrong = try await run(curl, arguments + ["--proxy-user", "robot:wrong", "https://ghcr.io/v2/"])
                    #expect(wrong.stdout.hasSuffix("407"), "\(wrong)")
                    let admitted = try await run(
                        curl, arguments + ["--proxy-user", "robot:s3cret", "https://ghcr.io/v2/\(images.multi.repository)/tags/list"])
                    #expect(admitted.stdout.hasPrefix("200"), "the proxy's user is the user inside the tunnel: \(admitted)")
                }
            }
        }
    }

    @Test func theCACannotSignForOtherNamesAndItsKeyStaysPrivate() async throws {
        try await withTemporaryDirectory(prefix: "awpc") { directory in
            let fixture = try await Fixture.make(ghcr: "http://127.0.0.1:9", quay: "http://127.0.0.1:9", in: directory)
            let archwayBinary = try ArchwayProcess.binaryPath()
            let openssl = try requireProgram("openssl")
            let mode = try FileManager.default.attributesOfItem(atPath: fixture.caKey.path)[.posixPermissions] as? NSNumber
            #expect(mode?.intValue == 0o600)
            let again = try await run(archwayBinary, ["ca", "init", "--config", fixture.configurationFile.path])
            #expect(!again.succeeded && again.stderr.contains("--force"), "an existing CA is not replaced silently: \(again)")

            let check = try await run(archwayBinary, ["ca", "check", "--config", fixture.configurationFile.path])
            #expect(check.succeeded, "\(check)")
            #expect(check.stdout.contains("permits: ghcr.io, quay.io and their subdomains; no IP address"), "\(check.stdout)")

            // Leaves the CA's key signs: only the permitted names verify.
            func leaf(_ subjectAlternativeName: String, _ name: String) async throws -> ProcessResult {
                let path = { (file: String) in directory.appendingPathComponent("\(name).\(file)").path }
                try "subjectAltName=\(subjectAlternativeName)\n".write(toFile: path("ext"), atomically: true, encoding: .utf8)
                try await run(
                    openssl,
                    [
                        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("key"), "-out",
                        path("csr"), "-subj", "/CN=leaf",
                    ]
                ).requireSuccess()
                try await run(
                    openssl,
                    [
                        "x509", "-req", "-in", path("csr"), "-CA", fixture.ca.path, "-CAkey", fixture.caKey.path, "-CAcreateserial", "-out",
                        path("crt"), "-days", "1", "-extfile", path("ext"),
                    ]
                ).requireSuccess()
                return try await run(openssl, ["verify", "-CAfile", fixture.ca.path, path("crt")])
            }
            let permitted = try await leaf("DNS:ghcr.io", "permitted")
            #expect(permitted.succeeded, "a leaf for an upstream verifies: \(permitted)")
            let below = try await leaf("DNS:pkg-containers.ghcr.io", "below")
            #expect(below.succeeded, "a name below an upstream's verifies (RFC 5280 subtrees): \(below)")
            let outside = try await leaf("DNS:www.example.com", "outside")
            #expect(!outside.succeeded && (outside.stdout + outside.stderr).contains("permitted subtree violation"), "\(outside)")
            let lookalike = try await leaf("DNS:evilghcr.io", "lookalike")
            #expect(!lookalike.succeeded, "a name that only ends like an upstream's: \(lookalike)")
            let address = try await leaf("IP:10.0.0.1", "address")
            #expect(!address.succeeded && (address.stdout + address.stderr).contains("excluded subtree violation"), "\(address)")

            // The popular way: a CA without constraints. `ca check` warns and fails.
            let skeleton = directory.appendingPathComponent("skeleton.crt")
            try await run(
                openssl,
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                    directory.appendingPathComponent("skeleton.key").path, "-out", skeleton.path, "-days", "2", "-subj", "/CN=MITM CA",
                ]
            ).requireSuccess()
            let warned = try await run(
                archwayBinary, ["ca", "check", "--config", fixture.configurationFile.path, "--certificate", skeleton.path])
            #expect(warned.exitCode == 1 && warned.stdout.contains("warning: the CA has no name constraints"), "\(warned)")

            // A configuration that needs a name the CA does not permit.
            let wider = fixture.configuration.replacingOccurrences(
                of: "default-upstream: ghcr.io", with: "  - name: registry.k8s.io\n    url: http://127.0.0.1:9\ndefault-upstream: ghcr.io")
            let widerFile = directory.appendingPathComponent("wider.yaml")
            try wider.write(to: widerFile, atomically: true, encoding: .utf8)
            let missing = try await run(archwayBinary, ["ca", "check", "--config", widerFile.path])
            #expect(missing.exitCode == 1 && missing.stdout.contains("registry.k8s.io: NOT permitted"), "\(missing)")

            // A key others can read stops the start, naming the file.
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: fixture.caKey.path)
            let refused = try await run(
                archwayBinary, ["serve", "--config", fixture.configurationFile.path], timeout: .seconds(30))
            #expect(!refused.succeeded && (refused.stdout + refused.stderr).contains("can be read by others"), "\(refused)")
        }
    }
}
