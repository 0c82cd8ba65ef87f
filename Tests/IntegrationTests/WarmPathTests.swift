import ArchwayTesting
import Foundation
import Testing

/// The warm path, against the real binary: a warm manifest answered on the event loop is the
/// full path's answer byte for byte and header for header, logged and counted the same; what
/// needs the full path still gets it; pipelined requests are answered in order.
@Suite(.serialized) struct WarmPathTests {
    static func warmAnswers(_ archway: ArchwayProcess) async throws -> Int {
        let metrics = try await httpRequest("GET", "\(archway.url)/metrics").bodyText
        return metrics.split(separator: "\n").first { $0.hasPrefix("archway_warm_manifests_total") }
            .flatMap { $0.split(separator: " ").last.flatMap { Int($0) } } ?? 0
    }

    /// What Archway sends on one connection that carries `requests`, read until Archway closes it
    /// (empty when it has not within 10 s).
    static func readUntilClosed(_ archway: ArchwayProcess, sending requests: String) async throws -> String {
        let script = """
            import socket, sys
            s = socket.create_connection(("127.0.0.1", \(archway.port)))
            s.settimeout(10)
            s.sendall(sys.argv[1].encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                data += chunk
            sys.stdout.write(data.decode("latin-1"))
            """
        return try await run(try requireProgram("python3"), ["-c", script, requests], timeout: .seconds(30)).stdout
    }

    /// One upstream twice, public (the default) and private, with optional credentials.
    static func publicAndPrivate(_ upstream: UpstreamRegistry, htpasswd: URL, extra: String = "") -> String {
        """
        upstreams:
          - name: registry.test
            url: \(upstream.url)
          - name: private.test
            url: \(upstream.url)
            private: true
        default-upstream: registry.test
        auth:
          htpasswd: \(htpasswd.path)
          required: false
        \(extra)
        """
    }

    @Test func aWarmManifestIsTheFullPathsAnswerAndTheFullPathKeepsWhatNeedsIt() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            try await withTemporaryDirectory { directory in
                let configuration = Self.publicAndPrivate(upstream, htpasswd: try Robots.htpasswd(in: directory))
                try await withArchwayProcess(configuration: configuration) { archway in
                    let path = "/v2/\(images.multi.repository)/manifests/\(images.multi.tag ?? "1.0")"
                    let accept = ["Accept": "application/vnd.oci.image.index.v1+json"]
                    let cold = try await httpRequest("GET", archway.url + path, headers: accept)
                    #expect(try await Self.warmAnswers(archway) == 0, "a miss takes the full path")
                    let warm = try await httpRequest("GET", archway.url + path, headers: accept)
                    #expect(try await Self.warmAnswers(archway) == 1, "the repeat is answered warm")
                    #expect(cold.status == 200 && warm.status == 200)
                    #expect(warm.body == cold.body)
                    var coldHeaders = cold.headers
                    var warmHeaders = warm.headers
                    #expect(coldHeaders.removeValue(forKey: "x-cache") == "MISS" && warmHeaders.removeValue(forKey: "x-cache") == "HIT")
                    // Both carry the time of the answer (RFC 9110: an origin server with a clock).
                    let dates = [coldHeaders.removeValue(forKey: "date"), warmHeaders.removeValue(forKey: "date")]
                    let format = DateFormatter()
                    format.locale = Locale(identifier: "en_US_POSIX")
                    format.timeZone = TimeZone(identifier: "GMT")
                    format.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                    for date in dates {
                        let parsed = try #require(date.flatMap { format.date(from: $0) }, "an IMF-fixdate: \(String(describing: date))")
                        #expect(abs(parsed.timeIntervalSinceNow) < 60)
                    }
                    #expect(warmHeaders == coldHeaders, "the same headers")
                    let head = try await httpRequest("HEAD", archway.url + path, headers: accept)
                    #expect(head.status == 200 && head.body.isEmpty && head.header("content-length") == warm.header("content-length"))
                    #expect(try await Self.warmAnswers(archway) == 2)
                    try await waitUntil(timeout: .seconds(5), "three access-log lines") {
                        archway.output().split(separator: "\n").filter { $0.contains(#""msg":"request""#) && $0.contains(path) }.count == 3
                    }
                    let lines = archway.output().split(separator: "\n").filter { $0.contains(#""msg":"request""#) && $0.contains(path) }
                    #expect(lines.last?.contains(#""cache":"HIT""#) == true && lines.last?.contains(#""method":"HEAD""#) == true)
                    #expect(lines.last?.contains(#""upstream":"registry.test""#) == true, "\(lines)")

                    // Credentials are checked by the full path, every time; a private upstream's
                    // manifest is never served warm to anyone without them.
                    let basic = "Basic " + Data("robot:s3cret".utf8).base64EncodedString()
                    let privatePath = "/v2/private.test/\(images.multi.repository)/manifests/\(images.multi.tag ?? "1.0")"
                    for _ in 0..<2 {
                        let admitted = try await httpRequest(
                            "GET", archway.url + privatePath, headers: accept.merging(["Authorization": basic]) { $1 })
                        #expect(admitted.status == 200)
                    }
                    let anonymous = try await HTTPSurfaceTests.curl(["-H", "Accept: \(accept["Accept"]!)", archway.url + privatePath])
                    #expect(anonymous.status == 401, "\(anonymous)")
                    let wrong = try await HTTPSurfaceTests.curl([
                        "-u", "robot:wrong", "-H", "Accept: \(accept["Accept"]!)", archway.url + path,
                    ])
                    #expect(wrong.status == 401, "wrong credentials are refused even for a warm public manifest: \(wrong)")
                    #expect(try await Self.warmAnswers(archway) == 2)
                    // A query naming `ns` twice, or anything percent-encoded, is the full path's to read.
                    for odd in [
                        "\(path)?ns=registry.test&ns=registry.test", path.replacingOccurrences(of: "/manifests/", with: "/manifests/%31"),
                    ] {
                        _ = try await HTTPSurfaceTests.curl(["-H", "Accept: \(accept["Accept"]!)", archway.url + odd])
                    }
                    #expect(try await Self.warmAnswers(archway) == 2)

                    // Pipelined: a cold request the full path answers, then a warm one; the answers
                    // leave in the order asked.
                    let coldPath = "/v2/\(images.singleARM64.repository)/manifests/\(images.singleARM64.tag ?? "arm64")"
                    let pipelined =
                        "GET \(coldPath) HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
                        + "GET \(path) HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.oci.image.index.v1+json\r\nConnection: close\r\n\r\n"
                    let raw = try await Self.readUntilClosed(archway, sending: pipelined)
                    let first = raw.range(of: images.singleARM64.manifestDigest).map {
                        raw.distance(from: raw.startIndex, to: $0.lowerBound)
                    }
                    let second = raw.range(of: "Docker-Content-Digest: \(images.multi.digest)", options: .caseInsensitive)
                        .map { raw.distance(from: raw.startIndex, to: $0.lowerBound) }
                    #expect(raw.components(separatedBy: "HTTP/1.1 200").count == 3, "\(raw.prefix(600))")
                    #expect(first != nil && second != nil && first! < second!, "in order: \(raw.prefix(600))")
                }
            }
        }
    }

    /// Over TLS with HTTP/2 the warm path answers on the connection (``WarmHTTP2Handler``): the
    /// full path's answer and access-log line, HEAD as well as GET, a connection that carries on
    /// with full-path streams after warm ones, and credentials still checked by the full path.
    @Test func overHTTP2AWarmManifestIsAnsweredOnTheConnection() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            try await withTemporaryDirectory { directory in
                let pki = try await TestCertificates.make(in: directory)
                let configuration = Self.publicAndPrivate(
                    upstream, htpasswd: try Robots.htpasswd(in: directory),
                    extra: "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.serverKey.path)\n")
                try await withArchwayProcess(configuration: configuration, tls: true) { archway in
                    let curl = try requireProgram("curl")
                    let tls = ["--http2", "--cacert", pki.caCertificate.path]
                    func warmAnswers() async throws -> Int {
                        let metrics = try await run(curl, ["-s"] + tls + ["\(archway.url)/metrics"]).requireSuccess().stdout
                        return metrics.split(separator: "\n").first { $0.hasPrefix("archway_warm_manifests_total") }
                            .flatMap { $0.split(separator: " ").last.flatMap { Int($0) } } ?? 0
                    }
                    let index = "Accept: application/vnd.oci.image.index.v1+json"
                    let path = "/v2/\(images.multi.repository)/manifests/\(images.multi.tag ?? "1.0")"
                    let cold = try await HTTPSurfaceTests.curl(tls + ["-H", index, archway.url + path])
                    #expect(try await warmAnswers() == 0, "a miss takes the full path")
                    let warm = try await HTTPSurfaceTests.curl(tls + ["-H", index, archway.url + path])
                    #expect(try await warmAnswers() == 1, "the repeat is answered warm")
                    #expect(cold.status == 200 && warm.status == 200 && warm.body == cold.body && !warm.body.isEmpty)
                    var coldHeaders = cold.headers
                    var warmHeaders = warm.headers
                    #expect(coldHeaders.removeValue(forKey: "x-cache") == "MISS" && warmHeaders.removeValue(forKey: "x-cache") == "HIT")
                    #expect(coldHeaders.removeValue(forKey: "date") != nil && warmHeaders.removeValue(forKey: "date") != nil)
                    #expect(warmHeaders == coldHeaders, "the same headers")
                    let head = try await HTTPSurfaceTests.curl(tls + ["-I", "-H", index, archway.url + path])
                    #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == warm.headers["content-length"])
                    #expect(try await warmAnswers() == 2)
                    let lines = archway.output().split(separator: "\n").filter { $0.contains(#""msg":"request""#) && $0.contains(path) }
                    #expect(
                        lines.last?.contains(#""cache":"HIT""#) == true && lines.last?.contains(#""method":"HEAD""#) == true
                            && lines.last?.contains(#""proto":"h2""#) == true, "\(lines)")

                    // One connection: warm, a full-path stream (another manifest, cold), warm
                    // again, and a blob; each answered, the connection reused throughout.
                    let coldPath = "/v2/\(images.singleARM64.repository)/manifests/\(images.singleARM64.tag ?? "arm64")"
                    let blob = "/v2/\(images.singleARM64.repository)/blobs/\(images.singleARM64.configDigest)"
                    let accepts = ["-H", index, "-H", "Accept: application/vnd.oci.image.manifest.v1+json"]
                    // Warm answers are remembered per Accept: this one's, first.
                    _ = try await run(curl, ["-s", "-o", "/dev/null"] + tls + accepts + [archway.url + path]).requireSuccess()
                    #expect(try await warmAnswers() == 2)
                    let mixed = try await run(
                        curl,
                        ["-s"] + tls + accepts + [
                            "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w",
                            "%{http_version} %{http_code} %{num_connects}\\n", archway.url + path, archway.url + coldPath,
                            archway.url + path,
                            archway.url + blob,
                        ]
                    ).requireSuccess()
                    #expect(mixed.stdout == "2 200 1\n2 200 0\n2 200 0\n2 200 0\n", "\(mixed)")
                    #expect(try await warmAnswers() == 4)

                    // Frames the client sends late for a stream answered warm (WINDOW_UPDATE,
                    // RST_STREAM) do not disturb the connection; a stream whose HEADERS leave it
                    // open is the full path's, whether DATA or a trailers block ends it.
                    let odd = HostileClients.report(
                        try await HostileClients.run([
                            "odd-streams", "127.0.0.1", String(archway.port), path, "--accept", "application/vnd.oci.image.index.v1+json",
                        ]))
                    let streams = odd?["streams"] as? [String: [String: Any]] ?? [:]
                    for stream in ["3", "5", "7"] {
                        #expect(
                            streams[stream]?["status"] as? String == "200" && streams[stream]?["ended"] as? Bool == true
                                && streams[stream]?["bytes"] as? Int == warm.body.utf8.count, "stream \(stream): \(odd ?? [:])")
                    }
                    #expect((odd?["goaways"] as? [Int])?.isEmpty == true && odd?["closed"] as? Bool == false, "\(odd ?? [:])")
                    #expect(try await warmAnswers() == 6, "streams 1 and 5 warm; 3 and 7 (ended by trailers) the full path's")

                    // Credentials are the full path's to check; a private manifest is never warm
                    // for a client without them.
                    let privatePath = "/v2/private.test/\(images.multi.repository)/manifests/\(images.multi.tag ?? "1.0")"
                    for _ in 0..<2 {
                        let admitted = try await HTTPSurfaceTests.curl(
                            tls + ["-u", "robot:s3cret", "-H", index, archway.url + privatePath])
                        #expect(admitted.status == 200)
                    }
                    let anonymous = try await HTTPSurfaceTests.curl(tls + ["-H", index, archway.url + privatePath])
                    #expect(anonymous.status == 401, "\(anonymous)")
                    let wrong = try await HTTPSurfaceTests.curl(tls + ["-u", "robot:wrong", "-H", index, archway.url + path])
                    #expect(wrong.status == 401, "wrong credentials are refused even for a warm public manifest: \(wrong)")
                    #expect(try await warmAnswers() == 6)
                }
            }
        }
    }

    /// Pushes `test/single:big`, a 2 MiB OCI manifest (an annotation pads it; distribution's
    /// limit is 4 MiB), and returns its bytes.
    static func pushLargeManifest(to upstream: UpstreamRegistry, images: StandardImages) async throws -> Data {
        let padding = String(repeating: "x", count: 2 << 20)
        let manifest = Data(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(images.singleAMD64.configDigest)",\
            "size":\(images.singleAMD64.configBytes.count)},"layers":[],"annotations":{"padding":"\(padding)"}}
            """.utf8)
        _ = try await RegistryUploader(upstream).pushManifest(
            repository: "test/single", reference: "big", bytes: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json")
        return manifest
    }

    /// A client that pipelines requests for a large warm manifest and reads nothing: warm answers
    /// stop once the connection is no longer writable and the rest wait in the full path, so
    /// memory does not grow with the requests; every answer still arrives, in order.
    @Test func aClientThatDoesNotReadCannotMakeWarmAnswersPileUp() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            let manifest = try await Self.pushLargeManifest(to: upstream, images: images)
            let oci = "application/vnd.oci.image.manifest.v1+json"
            let configuration = singleUpstreamConfiguration(upstream.url)
            try await withArchwayProcess(configuration: configuration) { archway in
                let path = "/v2/test/single/manifests/big"
                for _ in 0..<2 {
                    let answer = try await httpRequest("GET", archway.url + path, headers: ["Accept": oci])
                    #expect(answer.status == 200 && answer.body == manifest)
                }
                #expect(try await Self.warmAnswers(archway) == 1)
                let before = archway.peakResidentMemoryBytes() ?? 0
                let requests = 300
                let script = """
                    import json, socket, sys, time
                    port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
                    s = socket.create_connection(("127.0.0.1", port))
                    s.sendall(f"GET {path} HTTP/1.1\\r\\nHost: x\\r\\nAccept: \(oci)\\r\\n\\r\\n".encode() * n)
                    time.sleep(4)  # not reading: what Archway has answered waits in its memory
                    s.settimeout(60)
                    status, count, total, tail = b"HTTP/1.1 200 ", 0, 0, b""
                    while count < n:
                        chunk = s.recv(1 << 20)
                        if not chunk:
                            break
                        total += len(chunk)
                        window = tail + chunk
                        count += window.count(status)
                        tail = window[-(len(status) - 1):]
                    print(json.dumps({"answers": count, "bytes": total}))
                    """
                let result = try await run(
                    try requireProgram("python3"), ["-c", script, String(archway.port), path, String(requests)], timeout: .seconds(120)
                ).requireSuccess()
                let grown = (archway.peakResidentMemoryBytes() ?? 0) - before
                let report = try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Int]
                #expect(report?["answers"] == requests && (report?["bytes"] ?? 0) > (requests - 1) * manifest.count, "\(result.stdout)")
                let warm = try await Self.warmAnswers(archway) - 1
                // Unbounded, all 300 were answered warm and the peak grew by 600 MiB or more.
                #expect(warm < requests / 2, "\(warm) answered warm")
                #expect(grown < 200 << 20, "the peak grew by \(grown >> 20) MiB with \(warm) warm answers")
                print("not reading: \(warm) of \(requests) answered warm, peak memory grew \(grown >> 20) MiB")
            }
        }
    }

    /// Archway in front of the standard images, their multi-platform index answered once (so
    /// warm); `body` gets the process and the index's path.
    static func withWarmIndex(_ body: @escaping @Sendable (ArchwayProcess, String) async throws -> Void) async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url)) { archway in
                let path = "/v2/\(images.multi.repository)/manifests/\(images.multi.tag ?? "1.0")"
                _ = try await httpRequest("GET", archway.url + path, headers: ["Accept": "application/vnd.oci.image.index.v1+json"])
                try await body(archway, path)
            }
        }
    }

    @Test func aWarmAnswerClosesTheConnectionWhenTheClientAsks() async throws {
        try await Self.withWarmIndex { archway, path in
            // The client reads until the server closes: without the close it would wait for
            // the idle timeout, and the 10 s limit of `readUntilClosed` would fail the test.
            for connection in ["close", "keep-alive, Close"] {
                let before = try await Self.warmAnswers(archway)
                let request =
                    "GET \(path) HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.oci.image.index.v1+json\r\nConnection: \(connection)\r\n\r\n"
                let raw = try await Self.readUntilClosed(archway, sending: request)
                #expect(raw.hasPrefix("HTTP/1.1 200"), "\(raw.prefix(300))")
                #expect(raw.lowercased().contains("connection: close\r\n"), "\(raw.prefix(600))")
                let parts = raw.components(separatedBy: "\r\n\r\n")
                let length = parts.first?.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
                #expect(parts.count == 2 && length == parts[1].utf8.count, "the whole body came before the close")
                #expect(try await Self.warmAnswers(archway) == before + 1, "answered warm")
            }
        }
    }

    /// Keep-alive below both paths (`HTTP1ConnectionHandler`): the full path closes on the close
    /// token in any case and among others (Hummingbird's matched `close` exactly), nothing
    /// pipelined after the last request is answered, and HTTP/1.0 keeps the connection only
    /// when it asks, and is told so.
    @Test func keepAliveIsTheSameOnTheFullPathAndForHTTP10() async throws {
        try await Self.withWarmIndex { archway, manifest in
            let accept = "Accept: application/vnd.oci.image.index.v1+json\r\n"
            // Each answer's head, from its status line to its blank line.
            func heads(_ raw: String) -> [String] {
                raw.components(separatedBy: "HTTP/1.1 ").dropFirst().map {
                    ($0.components(separatedBy: "\r\n\r\n").first ?? "").lowercased()
                }
            }
            // The full path (`/v2/`), with the token among others; a request pipelined
            // after it is never answered.
            let full = try await Self.readUntilClosed(
                archway,
                sending: "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, CLOSE\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(heads(full).count == 1, "\(full)")
            #expect(heads(full).first?.contains("\r\nconnection: close") == true, "\(full)")

            // HTTP/1.0 asking to keep the connection, then one that does not ask: two
            // answers (the first says keep-alive, the second close), then the close. A warm
            // manifest and the full path alike.
            let before = try await Self.warmAnswers(archway)
            let http10 = try await Self.readUntilClosed(
                archway,
                sending: "GET \(manifest) HTTP/1.0\r\nHost: x\r\n\(accept)Connection: keep-alive\r\n\r\n"
                    + "GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n")
            let answers = heads(http10)
            #expect(answers.count == 2, "\(http10)")
            #expect(answers.first?.contains("\r\nconnection: keep-alive") == true, "\(http10)")
            #expect(answers.last?.contains("\r\nconnection: close") == true, "\(http10)")
            #expect(try await Self.warmAnswers(archway) == before + 1, "the manifest was answered warm")
        }
    }

    @Test func archwayWarmPathOffSendsEveryRequestThroughTheFullPath() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            let configuration = singleUpstreamConfiguration(upstream.url)
            try await withArchwayProcess(configuration: configuration, environment: ["ARCHWAY_WARM_PATH": "off"]) { archway in
                let path = "/v2/\(images.multi.repository)/manifests/\(images.multi.tag ?? "1.0")"
                for _ in 0..<3 {
                    let answer = try await httpRequest(
                        "GET", archway.url + path, headers: ["Accept": "application/vnd.oci.image.index.v1+json"])
                    #expect(answer.status == 200)
                }
                #expect(try await Self.warmAnswers(archway) == 0)
            }
        }
    }
}
