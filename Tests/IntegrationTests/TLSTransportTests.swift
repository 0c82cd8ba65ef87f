import ArchwayTesting
import Foundation
import Testing

/// TLS on the wire: HTTP/2 bodies whole and in full TLS records (``TLSRecordPacker``), and
/// sessions resumed.
struct TLSTransportTests {
    /// A relay between curl and Archway that reads the TLS record headers Archway sends (their
    /// lengths are in the clear) and reports them with curl's result.
    static let relay = """
        import json, socket, struct, subprocess, sys, threading
        target_port, url, output, cacert = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(1)
        port = listener.getsockname()[1]
        curl = subprocess.Popen(["curl", "-s", "--http2", "--cacert", cacert, "--connect-to", f"::127.0.0.1:{port}",
                                 "-o", output, "-w", "%{http_version} %{http_code} %{size_download}", url],
                                stdout=subprocess.PIPE, text=True)
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", target_port))
        def upward():
            try:
                while data := client.recv(65536):
                    server.sendall(data)
            except OSError:
                pass  # curl resets the connection once it has the whole body
            server.shutdown(socket.SHUT_WR)
        threading.Thread(target=upward, daemon=True).start()
        stream, lengths = b"", []
        while data := server.recv(65536):
            try:
                client.sendall(data)
            except OSError:
                pass
            stream += data
            while len(stream) >= 5 and len(stream) >= 5 + struct.unpack(">H", stream[3:5])[0]:
                kind, length = stream[0], struct.unpack(">H", stream[3:5])[0]
                if kind == 23:
                    lengths.append(length)
                stream = stream[5 + length:]
        client.close()
        print(json.dumps({"curl": curl.communicate(timeout=60)[0], "records": lengths}))
        """

    @Test func http2BodiesLeaveWholeAndInFullRecords() async throws {
        try await withUpstreamRegistry { upstream in
            // 4 MiB that does not compress: 256 DATA frames of 16 KiB.
            var generator = SystemRandomNumberGenerator()
            let blob = Data((0..<(4 << 20) / 8).flatMap { _ in withUnsafeBytes(of: generator.next()) { Array($0) } })
            let pushed = try await RegistryUploader(upstream).pushBlob(repository: "test/big", data: blob)
            try await withTemporaryDirectory { directory in
                let pki = try await TestCertificates.make(in: directory)
                let tls = "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.serverKey.path)\n"
                try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: tls), tls: true) { archway in
                    let url = "\(archway.url)/v2/registry.test/test/big/blobs/\(pushed.digest)"
                    for pass in ["cold", "warm"] {
                        let output = directory.appendingPathComponent("blob-\(pass)")
                        let result = try await run(
                            try requireProgram("python3"),
                            ["-c", Self.relay, String(archway.port), url, output.path, pki.caCertificate.path],
                            timeout: .seconds(120)
                        ).requireSuccess()
                        struct Report: Decodable {
                            let curl: String
                            let records: [Int]
                        }
                        let report = try JSONDecoder().decode(Report.self, from: result.stdoutData)
                        #expect(report.curl == "2 200 \(blob.count)", "\(pass): \(report.curl)")
                        #expect(try Data(contentsOf: output) == blob, "\(pass): the bytes sent")
                        // A record's length includes TLS 1.3's type byte and 16-byte tag.
                        let full = report.records.filter { $0 >= 16_384 }.count
                        let small = report.records.filter { $0 < 1_024 }.count
                        #expect(full >= 240, "\(pass): \(full) full records of \(report.records.count)")
                        // Cold, each flush carries what the upstream has sent so far, and under
                        // the load of `make test` that is often a short piece (68 small records
                        // once); warm, the file is read in 1 MiB chunks.
                        let allowed = pass == "cold" ? 128 : 64
                        #expect(
                            small <= allowed,
                            "\(pass): \(small) small records of \(report.records.count), unpacked, the frame headers alone made 256")
                    }
                }
            }
        }
    }

    /// A client that comes back resumes its session (no certificate, no key exchange of a full
    /// handshake): with a TLS 1.3 ticket, and with a TLS 1.2 one.
    @Test func aReturningClientResumesItsSession() async throws {
        try await withUpstreamRegistry { upstream in
            try await withTemporaryDirectory { directory in
                let pki = try await TestCertificates.make(in: directory)
                let tls = "tls:\n  certificate: \(pki.serverCertificate.path)\n  key: \(pki.serverKey.path)\n"
                try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url, extra: tls), tls: true) { archway in
                    // s_client keeps the session the server's ticket describes; the request keeps
                    // the connection open long enough for the ticket (sent after the handshake
                    // in TLS 1.3) to arrive.
                    let script = """
                        import subprocess, sys
                        port, version, session, ca, mode = sys.argv[1:6]
                        request = b"GET /v2/ HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"
                        result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", f"-{version}", "-CAfile", ca,
                                                 f"-sess_{mode}", session, "-ign_eof"], input=request, capture_output=True, timeout=30)
                        sys.stdout.write(result.stdout.decode("latin-1"))
                        """
                    for version in ["tls1_3", "tls1_2"] {
                        let session = directory.appendingPathComponent("session-\(version).pem").path
                        var lines: [String] = []
                        for mode in ["out", "in"] {
                            let result = try await run(
                                try requireProgram("python3"),
                                ["-c", script, String(archway.port), version, session, pki.caCertificate.path, mode], timeout: .seconds(60)
                            ).requireSuccess()
                            #expect(result.stdout.contains("HTTP/1.1 200"), "\(version) \(mode): \(result.stdout.suffix(400))")
                            lines.append(
                                result.stdout.split(separator: "\n").first { $0.hasPrefix("New, ") || $0.hasPrefix("Reused, ") }.map(
                                    String.init) ?? "")
                        }
                        #expect(lines[0].hasPrefix("New, "), "\(version): \(lines)")
                        #expect(lines[1].hasPrefix("Reused, "), "\(version): \(lines)")
                    }
                }
            }
        }
    }
}
