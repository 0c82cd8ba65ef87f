import ArchwayTesting
import Foundation
import RegistryClient
import Testing

/// What a client can hold of the server: idle connections, TLS connections that never shake
/// hands, HTTP/2 streams that never open their window, control-frame floods. The real binary,
/// attacked by `scripts/hostile_clients.py` from processes of its own.
/// The attacks take the machine's cores: their suites run one after the other.
@Suite(.serialized) struct HostileTests {}

extension HostileTests {
    @Suite(.serialized) struct ConnectionLimitTests {
        static let oci = "application/vnd.oci.image.index.v1+json"

        /// Resident memory of a running process, from /proc.
        static func residentBytes(_ archway: ArchwayProcess) -> Int {
            archway.peakResidentMemoryBytes() ?? 0
        }

        @Test func twentyThousandIdleConnectionsDoNotStopANewClient() async throws {
            try await withUpstreamRegistry { upstream in
                let images = try await StandardImages.seed(upstream)
                let limits = "limits:\n  connections: 2000\n  request-timeout: 3s\n"
                try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: limits)) { archway in
                    let before = Self.residentBytes(archway)
                    let outputs = (0..<2).map { archway.directory.appendingPathComponent("idle-\($0).log") }
                    // Two processes of 10 000 connections each (one process may hold only 20 000
                    // descriptors here), held for 25 s.
                    let attackers = try outputs.map { output in
                        try HostileClients.start(
                            ["idle", "127.0.0.1", String(archway.port), "--connections", "10000", "--seconds", "25"], outputFile: output)
                    }
                    // 10 s on a quiet machine; in `make test` this starts with every other suite
                    // and took 90 s once (a hang guard, not a measure).
                    try await waitUntil(timeout: .seconds(300), "20 000 idle connections to be opened") {
                        outputs.allSatisfy { ((try? String(contentsOf: $0, encoding: .utf8)) ?? "").contains(#""event": "opened""#) }
                    }
                    // Nearly all of them: while Archway replaces connections at its limit, the
                    // kernel's accept queue can drop a rare SYN (the client's 5 s connect then
                    // fails). What matters is that none stays open forever, checked below.
                    let openedReports = outputs.compactMap { try? String(contentsOf: $0, encoding: .utf8) }
                        .compactMap { $0.split(separator: "\n").first.flatMap { HostileClients.report(String($0)) } }
                    let opened = openedReports.compactMap { $0["opened"] as? Int }.reduce(0, +)
                    #expect(opened >= 19_900, "\(openedReports)")

                    // A new client, while the idle ones are held: pulls as if nothing happened.
                    let inspect = try await Skopeo.inspectRaw(
                        "docker://\(archway.host)/registry.test/test/multi:1.0", arguments: ["--tls-verify=false"])
                    #expect(inspect.succeeded, "\(inspect)")
                    #expect(sha256Digest(inspect.stdoutData) == images.multi.digest)
                    let manifest = try await CacheEnvironment.fetch(
                        "\(archway.url)/v2/registry.test/test/multi/manifests/1.0", headers: ["Accept": Self.oci])
                    #expect(manifest.status == 200)
                    #expect(archway.isRunning)

                    for attacker in attackers { _ = await attacker.waitForExit(timeout: .seconds(60)) }
                    let reports = outputs.compactMap { try? String(contentsOf: $0, encoding: .utf8) }
                        .compactMap { $0.split(separator: "\n").last.flatMap { HostileClients.report(String($0)) } }
                    let closed = reports.compactMap { $0["closed_by_server"] as? Int }.reduce(0, +)
                    // Idle connections were closed by the server (replaced by newcomers, or timed out):
                    // none stays open waiting forever.
                    #expect(closed == opened, "\(reports)")
                    let grown = Self.residentBytes(archway) - before
                    #expect(grown < 200 << 20, "resident memory grew by \(grown >> 20) MiB")
                    let seconds = openedReports.compactMap { $0["seconds"] as? Double }
                    print(
                        "idle connections: closed by the server \(closed) of \(opened) opened (in \(seconds) s), memory grew \(grown >> 20) MiB"
                    )
                }
            }
        }

        /// A burst of clients that outruns accept() waits in the kernel's queue: with a short
        /// queue (Hummingbird's default, 256) Linux drops the rest's SYNs and each of them stalls
        /// for a second or more. Archway is stopped (SIGSTOP) so it accepts nothing meanwhile.
        @Test func aBurstOfConnectionsWaitsInTheListenQueueInsteadOfBeingDropped() async throws {
            try await withUpstreamRegistry { upstream in
                let images = try await StandardImages.seed(upstream)
                try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url)) { archway in
                    let pid = try #require(archway.pid)
                    // The kernel caps every listen queue at net.core.somaxconn (4096 since Linux 5.4).
                    let somaxconn = try #require(
                        Int(
                            try String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8).trimmingCharacters(
                                in: .whitespacesAndNewlines)))
                    let burst = min(3000, somaxconn + 1)
                    #expect(archway.signal(SIGSTOP))
                    let output: String
                    do {
                        output = try await HostileClients.run([
                            "burst", "127.0.0.1", String(archway.port), "--connections", String(burst), "--wait", "0.9",
                        ])
                    } catch {
                        _ = archway.signal(SIGCONT)
                        throw error
                    }
                    #expect(archway.signal(SIGCONT))
                    let report = try #require(HostileClients.report(output), "\(output)")
                    // 0.9 s: before the first SYN retransmit, so a dropped SYN shows as pending.
                    #expect(report["established"] as? Int == burst, "pid \(pid), somaxconn \(somaxconn): \(report)")

                    // The queued connections (closed by the client) are accepted and let go; pulls go on.
                    let inspect = try await Skopeo.inspectRaw(
                        "docker://\(archway.host)/registry.test/test/multi:1.0", arguments: ["--tls-verify=false"])
                    #expect(inspect.succeeded, "\(inspect)")
                    #expect(sha256Digest(inspect.stdoutData) == images.multi.digest)
                }
            }
        }

        /// The request timeout counts only while nothing is being sent: a client that reads a
        /// stored blob slowly (sendfile on plain HTTP, userspace writes over TLS) for longer than
        /// `limits.request-timeout` gets every byte, and newcomers at the connection limit do not
        /// replace it. The timer (and the limiter's idle mark) used to start once the response's
        /// end had been handed down, while the file was still leaving.
        @Test func aSlowDownloadOutlivesTheRequestTimeout() async throws {
            try await withUpstreamRegistry { upstream in
                // More than loopback's socket buffers hold (several MiB each way), so the file is
                // still leaving Archway when the timeout passes.
                let mebibyte = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
                let data = Data((0..<48).flatMap { _ in mebibyte })
                let blob = try await RegistryUploader(upstream).pushBlob(repository: "test/slow", data: data)
                try await withTemporaryDirectory { directory in
                    let pki = try await TestCertificates.make(in: directory)
                    let limits = "limits:\n  request-timeout: 2s\n  connections: 16\n"
                    let tls = "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.serverKey.path)\n"
                    for secure in [false, true] {
                        let configuration = singleUpstreamConfiguration(upstream.url, extra: limits + (secure ? tls : ""))
                        try await withArchwayProcess(configuration: configuration, tls: secure) { archway in
                            let url = "\(archway.url)/v2/registry.test/test/slow/blobs/\(blob.digest)"
                            let output = directory.appendingPathComponent("slow-\(secure)")
                            let curl = try requireProgram("curl")
                            var arguments = ["-s", "--http1.1", "-o", output.path, "-w", "%{http_code}"]
                            if secure { arguments += ["--cacert", pki.caCertificate.path] }
                            // Stored first, then read at 8 MiB/s: 6 s, three request timeouts.
                            _ = try await run(curl, arguments + [url], timeout: .seconds(60))
                            let download = Task { try await run(curl, arguments + ["--limit-rate", "8M", url], timeout: .seconds(60)) }
                            // Meanwhile connections beyond the limit of 16: each replaces the
                            // longest-idle connection, never the download.
                            try await Task.sleep(for: .seconds(1))
                            _ = try await HostileClients.run([
                                "idle", "127.0.0.1", String(archway.port), "--connections", "40", "--seconds", "2",
                            ])
                            let result = try await download.value
                            #expect(result.stdout == "200", "tls \(secure): \(result)")
                            #expect(try Data(contentsOf: output) == data, "tls \(secure): the download was cut")
                            guard !secure else { return }
                            // A client that asks for the last response and never reads does not
                            // hold the connection (and the blob's file) forever: with nothing
                            // moving for a period, it is closed before the 48 MiB have left.
                            let script = """
                                import socket, sys, time
                                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                                s.connect(("127.0.0.1", \(archway.port)))
                                s.sendall(sys.argv[1].encode()); time.sleep(10); s.settimeout(10)
                                total = 0
                                while True:
                                    chunk = s.recv(1 << 20)
                                    if not chunk: break
                                    total += len(chunk)
                                print(total)
                                """
                            let request =
                                "GET /v2/registry.test/test/slow/blobs/\(blob.digest) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                            let stalled = try await run(try requireProgram("python3"), ["-c", script, request], timeout: .seconds(60))
                            let received = Int(stalled.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
                            #expect(received >= 0 && received < data.count, "a reader that stopped got \(received) bytes: \(stalled)")
                        }
                    }
                }
            }
        }

        @Test func runningOutOfDescriptorsPausesAcceptingInsteadOfSpinning() async throws {
            try await withUpstreamRegistry { upstream in
                let images = try await StandardImages.seed(upstream)
                let limits = "limits:\n  request-timeout: 3s\n"
                try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: limits)) { archway in
                    // An open-file limit far below the connection limit, as an operator may leave it.
                    let pid = try #require(archway.pid)
                    try await run(try requireProgram("prlimit"), ["--pid", String(pid), "--nofile=256:256"]).requireSuccess()
                    let before = try #require(archway.cpuTime())
                    let report = HostileClients.report(
                        try await HostileClients.run([
                            "idle", "127.0.0.1", String(archway.port), "--connections", "2000", "--seconds", "6", "--nonblocking",
                        ]))
                    let used = try #require(archway.cpuTime()) - before
                    // accept() failing with EMFILE in a loop would burn a core for the 6 seconds.
                    #expect(used < .seconds(3), "Archway used \(used) of CPU while out of descriptors: \(report ?? [:])")
                    #expect(archway.isRunning)
                    let inspect = try await Skopeo.inspectRaw(
                        "docker://\(archway.host)/registry.test/test/multi:1.0", arguments: ["--tls-verify=false"])
                    #expect(inspect.succeeded, "\(inspect)")
                    #expect(sha256Digest(inspect.stdoutData) == images.multi.digest)
                    print("out of descriptors: \(used) CPU over 6 s, \(report ?? [:])")
                }
            }
        }

        @Test func tlsConnectionsThatNeverShakeHandsAreClosed() async throws {
            try await withUpstreamRegistry { upstream in
                try await withTemporaryDirectory { directory in
                    let pki = try await TestCertificates.make(in: directory)
                    let extra = """
                        tls:
                          certificate: \(pki.serverCertificate.path)
                          key: \(pki.serverKey.path)
                        limits:
                          handshake-timeout: 2s

                        """
                    try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: extra), tls: true) {
                        archway in
                        let report = HostileClients.report(
                            try await HostileClients.run([
                                "idle", "127.0.0.1", String(archway.port), "--connections", "200", "--seconds", "8",
                            ]))
                        #expect(report?["closed_by_server"] as? Int == 200, "\(report ?? [:])")
                    }
                }
            }
        }

        /// Archway with TLS (HTTP/2 by ALPN) in front of an upstream holding a 64 MiB blob, warm.
        static func withWarmTLSArchway(extra: String = "", _ body: (ArchwayProcess, String) async throws -> Void) async throws {
            try await withUpstreamRegistry { upstream in
                try await withTemporaryDirectory { directory in
                    let blob = try makeLargeBlobFile(size: 64 << 20, seed: 64, in: directory)
                    let pushed = try await RegistryUploader(baseURL: upstream.url).pushBlob(repository: "test/big", file: blob)
                    try FileManager.default.removeItem(at: blob)
                    let pki = try await TestCertificates.make(in: directory)
                    let configuration = """
                        tls:
                          certificate: \(pki.serverCertificate.path)
                          key: \(pki.serverKey.path)
                        \(extra)
                        """
                    try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: configuration), tls: true)
                    {
                        archway in
                        let path = "/v2/registry.test/test/big/blobs/\(pushed.digest)"
                        let warm = try await run(
                            try requireProgram("curl"), ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "\(archway.url)\(path)"])
                        #expect(warm.stdout == "200")
                        try await body(archway, path)
                    }
                }
            }
        }

        @Test func zeroWindowHTTP2StreamsKeepMemoryBounded() async throws {
            try await Self.withWarmTLSArchway(extra: "limits:\n  write-timeout: 3s\n") { archway, path in
                let before = Self.residentBytes(archway)
                // 40 connections x 100 streams of the 64 MiB blob, none of which lets a byte through.
                let report = HostileClients.report(
                    try await HostileClients.run([
                        "zero-window", "127.0.0.1", String(archway.port), path, "--connections", "40", "--streams", "100", "--seconds", "8",
                    ]))
                let grown = Self.residentBytes(archway) - before
                // The README's bound: at most 512 streamed responses, each holding about half a MiB.
                #expect(grown < 400 << 20, "resident memory grew by \(grown >> 20) MiB: \(report ?? [:])")
                // Streams beyond the limit were refused, and stalled ones ended by the write timeout.
                #expect((report?["resets"] as? Int ?? 0) > 0, "\(report ?? [:])")
                #expect(archway.isRunning)
                let after = try await run(
                    try requireProgram("curl"), ["-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code}", "\(archway.url)\(path)"])
                #expect(after.stdout == "200", "a well-behaved client still downloads")
                let log = archway.output()
                let refusals = log.components(separatedBy: #""status":"503""#).count - 1
                #expect(refusals > 0, "streams beyond the budget are refused")
                print("zero-window streams: memory grew \(grown >> 20) MiB, \(refusals) refused with 503, \(report ?? [:])")
            }
        }

        /// The same for a 2 MiB manifest, warm: answers wait within the warm path's budget, then
        /// stream from the cache's bytes within the streaming budget (not a copy per stream).
        @Test func zeroWindowHTTP2StreamsOfALargeManifestKeepMemoryBounded() async throws {
            try await withUpstreamRegistry { upstream in
                let images = try await StandardImages.seed(upstream)
                let manifest = try await WarmPathTests.pushLargeManifest(to: upstream, images: images)
                try await withTemporaryDirectory { directory in
                    let pki = try await TestCertificates.make(in: directory)
                    let tls = "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.serverKey.path)\n"
                    try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: tls), tls: true) {
                        archway in
                        let oci = "application/vnd.oci.image.manifest.v1+json"
                        let path = "/v2/registry.test/test/single/manifests/big"
                        let output = directory.appendingPathComponent("manifest")
                        func download() async throws -> String {
                            try await run(
                                try requireProgram("curl"),
                                [
                                    "-s", "--http2", "--cacert", pki.caCertificate.path, "-H", "Accept: \(oci)", "-o", output.path, "-w",
                                    "%{http_code}", "\(archway.url)\(path)",
                                ]
                            ).stdout
                        }
                        for _ in 0..<2 { #expect(try await download() == "200") }
                        let before = Self.residentBytes(archway)
                        // 40 connections x 16 streams: 1.3 GB if each held its own copy.
                        let report = HostileClients.report(
                            try await HostileClients.run([
                                "zero-window", "127.0.0.1", String(archway.port), path, "--connections", "40", "--streams", "16",
                                "--seconds", "8", "--accept", oci,
                            ]))
                        let grown = Self.residentBytes(archway) - before
                        #expect(grown < 400 << 20, "resident memory grew by \(grown >> 20) MiB: \(report ?? [:])")
                        let statuses = report?["statuses"] as? [String: Int] ?? [:]
                        #expect(statuses["200"] ?? 0 > 0, "\(report ?? [:])")
                        #expect(archway.isRunning)
                        #expect(try await download() == "200" && (try Data(contentsOf: output)) == manifest, "a reader still gets it whole")
                        print("zero-window streams of a 2 MiB manifest: memory grew \(grown >> 20) MiB, \(report ?? [:])")
                    }
                }
            }
        }

        @Test func http2StreamsBeyondTheLimitEndTheConnectionAndSettingsMustBeAcknowledged() async throws {
            try await Self.withWarmTLSArchway { archway, path in
                // Once SETTINGS are exchanged, 16 streams at once are served...
                let allowed = HostileClients.report(
                    try await HostileClients.run([
                        "zero-window", "127.0.0.1", String(archway.port), path, "--connections", "1", "--streams", "16",
                        "--seconds", "2", "--after-settings",
                    ]))
                #expect((allowed?["statuses"] as? [String: Int])?["200"] == 16, "\(allowed ?? [:])")
                #expect(allowed?["goaways"] as? Int == 0, "\(allowed ?? [:])")
                // ...and a 17th ends the connection (NIOHTTP2 answers GOAWAY PROTOCOL_ERROR).
                let beyond = HostileClients.report(
                    try await HostileClients.run([
                        "zero-window", "127.0.0.1", String(archway.port), path, "--connections", "1", "--streams", "17",
                        "--seconds", "2", "--after-settings",
                    ]))
                #expect((beyond?["goaway_codes"] as? [[Any]])?.first?.first as? Int == 1, "\(beyond ?? [:])")
                // A client that never acknowledges the server's SETTINGS is sent away.
                let silent = HostileClients.report(
                    try await HostileClients.run(["silent-settings", "127.0.0.1", String(archway.port), "--seconds", "20"]))
                #expect(silent?["goaway"] as? Int == 4, "GOAWAY SETTINGS_TIMEOUT expected: \(silent ?? [:])")
            }
        }

        @Test func aWindowUpdateFloodIsCutOffWithGoAway() async throws {
            try await Self.withWarmTLSArchway { archway, path in
                let report = HostileClients.report(
                    try await HostileClients.run(["window-update-flood", "127.0.0.1", String(archway.port), "--seconds", "15"]))
                #expect(report?["goaway"] as? Int == 11, "GOAWAY ENHANCE_YOUR_CALM expected: \(report ?? [:])")
                #expect(archway.isRunning)
                _ = path
            }
        }
    }
}
