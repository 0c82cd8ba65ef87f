import ArchwayTesting
import Foundation
import Testing

/// The access line is written when the response has ended, with the bytes that actually left.
@Suite struct AccessLogTests {
    /// The `request` lines of Archway's log for `path`, each as its fields.
    static func accessLines(_ archway: ArchwayProcess, path: String) -> [[String: String]] {
        archway.output().split(separator: "\n").compactMap { line in
            guard let data = line.data(using: .utf8),
                let fields = try? JSONSerialization.jsonObject(with: data) as? [String: String],
                fields["msg"] == "request", fields["path"] == path
            else { return nil }
            return fields
        }
    }

    @Test func aBlobsLineCountsTheBytesSentAndSaysWhetherTheClientStayed() async throws {
        try await withUpstreamRegistry { upstream in
            let size = 64 << 20
            let blob = try await RegistryUploader(upstream).pushBlob(
                repository: "test/log", data: Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }))
            try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url)) { archway in
                let path = "/v2/registry.test/test/log/blobs/\(blob.digest)"
                // Cold (the client follows the download), warm, and a HEAD.
                for _ in 0..<2 {
                    let fetched = try await CacheEnvironment.fetch(archway.url + path)
                    #expect(fetched.digest == blob.digest)
                }
                _ = try await run(try requireProgram("curl"), ["-sfI", archway.url + path], timeout: .seconds(30))
                // A client that reads 1 MiB and leaves: the kernel cannot take the other 63.
                let script = """
                    import socket, sys
                    host, port = sys.argv[1].rsplit(":", 1)
                    s = socket.create_connection((host, int(port)))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                    s.sendall(("GET " + sys.argv[2] + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n").encode())
                    got = 0
                    while got < (1 << 20):
                        got += len(s.recv(65536))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
                    s.close()
                    """
                let address = archway.url.replacingOccurrences(of: "http://", with: "")
                _ = try await run(try requireProgram("python3"), ["-c", script, address, path], timeout: .seconds(30))
                try await waitUntil(timeout: .seconds(30), "four access lines") { Self.accessLines(archway, path: path).count == 4 }
                let lines = Self.accessLines(archway, path: path)
                #expect(lines.map { $0["method"] } == ["GET", "GET", "HEAD", "GET"])
                #expect(lines.map { $0["cache"] } == ["MISS", "HIT", "HIT", "HIT"])
                #expect(lines[0]["bytes"] == String(size) && lines[0]["end"] == "complete", "\(lines[0])")
                #expect(lines[1]["bytes"] == String(size) && lines[1]["end"] == "complete", "\(lines[1])")
                #expect(lines[2]["bytes"] == "0" && lines[2]["end"] == "complete", "\(lines[2])")
                #expect(lines[3]["end"] == "client-gone", "\(lines[3])")
                #expect(Int(lines[3]["bytes"] ?? "") ?? -1 < size, "\(lines[3])")
                #expect(lines.allSatisfy { $0["status"] == "200" && $0["upstream"] == "registry.test" })
            }
        }
    }
}
