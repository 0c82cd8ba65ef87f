import ArchwayTesting
import Foundation
import Testing

/// The registry API through the real archway binary, compared with the upstream's own answers.
@Suite(.serialized) struct HTTPSurfaceTests {
    static let oci = "application/vnd.oci.image.manifest.v1+json"
    static let ociIndex = "application/vnd.oci.image.index.v1+json"
    static let docker = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"

    /// `curl` with the path exactly as written (no `..` folding), returning status, headers and body.
    static func curl(_ arguments: [String]) async throws -> (status: Int, headers: [String: String], body: String) {
        let result = try await run(
            try requireProgram("curl"), ["-s", "-i", "--path-as-is"] + arguments, timeout: .seconds(60)
        )
        let text = result.stdout
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        var headers: [String: String] = [:]
        for line in head.components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, headers, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func manifestAnswersMatchTheUpstreamForEveryAcceptCombination() async throws {
        try await withPullThrough { env in
            let accepts: [[String]] = [
                [Self.oci, Self.ociIndex, Self.docker, Self.dockerList],
                [Self.docker], [Self.docker, Self.dockerList], [Self.oci], [Self.ociIndex, Self.oci],
            ]
            let references = [
                "test/multi/manifests/1.0", "test/dockerlist/manifests/1.0", "test/docker/manifests/1.0",
                "test/single/manifests/arm64", "test/multi/manifests/\(env.images.multiARM64.manifestDigest)",
            ]
            for reference in references {
                for accept in accepts {
                    // Six separate Accept lines, the way containers/image sends them.
                    let acceptArguments = accept.flatMap { ["-H", "Accept: \($0)"] }
                    for method in ["GET", "HEAD"] {
                        let methodArguments = method == "HEAD" ? ["-I"] : []
                        let direct = try await Self.curl(methodArguments + acceptArguments + ["\(env.upstream.url)/v2/\(reference)"])
                        let mirrored = try await Self.curl(
                            methodArguments + acceptArguments + ["\(env.archway.url)/v2/\(reference)?ns=registry.test"]
                        )
                        let label = "\(method) \(reference) accept \(accept)"
                        #expect(mirrored.status == direct.status, "\(label)")
                        #expect(mirrored.headers["docker-content-digest"] == direct.headers["docker-content-digest"], "\(label)")
                        #expect(mirrored.headers["content-type"] == direct.headers["content-type"] || direct.status != 200, "\(label)")
                        #expect(mirrored.headers["content-length"] == direct.headers["content-length"] || direct.status != 200, "\(label)")
                        if method == "GET", direct.status == 200 {
                            #expect(mirrored.body == direct.body, "\(label)")
                        }
                    }
                }
            }
        }
    }

    @Test func clientMistakesGetTheSpecsErrorsWithoutAskingTheUpstream() async throws {
        try await withPullThrough { env in
            let base = "\(env.archway.url)/v2"
            let cases: [(String, [String], Int, String)] = [
                ("unknown tag", ["\(base)/registry.test/test/multi/manifests/9.9"], 404, "MANIFEST_UNKNOWN"),
                ("wrong digest", ["\(base)/registry.test/test/multi/manifests/sha256:totallywrong"], 400, "DIGEST_INVALID"),
                ("dot-dot", ["\(base)/registry.test/test/../multi/manifests/1.0"], 400, "NAME_INVALID"),
                ("encoded dot-dot", ["\(base)/registry.test/test/%2e%2e/multi/manifests/1.0"], 400, "NAME_INVALID"),
                ("uppercase", ["\(base)/registry.test/Test/Multi/manifests/1.0"], 400, "NAME_INVALID"),
                ("put", ["-X", "PUT", "--data", "{}", "\(base)/registry.test/test/multi/manifests/1.0"], 405, "UNSUPPORTED"),
                ("delete", ["-X", "DELETE", "\(base)/registry.test/test/multi/manifests/1.0"], 405, "UNSUPPORTED"),
                ("upload", ["-X", "POST", "\(base)/registry.test/test/multi/blobs/uploads/"], 405, "UNSUPPORTED"),
                ("unknown ns", ["\(base)/test/multi/manifests/1.0?ns=attacker.example"], 404, "NAME_UNKNOWN"),
                (
                    "unknown blob", ["\(base)/registry.test/test/multi/blobs/sha256:\(String(repeating: "0", count: 64))"], 404,
                    "BLOB_UNKNOWN"
                ),
                ("dead default upstream", ["\(base)/test/multi/manifests/1.0"], 503, "UNAVAILABLE"),
            ]
            let before = env.upstream.accessLogMark()
            for (label, arguments, status, code) in cases {
                let answer = try await Self.curl(arguments)
                #expect(answer.status == status, "\(label): \(answer.body)")
                #expect(answer.body.contains("\"code\":\"\(code)\""), "\(label): \(answer.body)")
                #expect(answer.headers["content-type"] == "application/json", "\(label)")
            }
            let reached = env.upstream.accessLog(since: before).map(\.path)
            #expect(reached == ["/v2/test/multi/manifests/9.9", "/v2/test/multi/blobs/sha256:\(String(repeating: "0", count: 64))"])
        }
    }

    @Test func tagListsAndRangesPassThrough() async throws {
        try await withPullThrough { env in
            let tags = try await Self.curl(["\(env.archway.url)/v2/registry.test/test/single/tags/list"])
            #expect(tags.status == 200)
            #expect(tags.body.contains(#""tags":["amd64","arm64"]"#), "\(tags.body)")
            #expect(tags.body.contains(#""name":"registry.test/test/single""#), "\(tags.body)")
            let page = try await Self.curl(["\(env.archway.url)/v2/registry.test/test/single/tags/list?n=1"])
            #expect(page.body.contains(#""tags":["amd64"]"#), "\(page.body)")
            #expect(page.headers["link"] == #"</v2/registry.test/test/single/tags/list?last=amd64&n=1>; rel="next""#)

            let layer = env.images.singleAMD64.layers[0]
            let blobURL = "\(env.archway.url)/v2/registry.test/test/single/blobs/\(layer.digest)"
            let part = try await Self.curl(["-H", "Range: bytes=0-9", blobURL])
            #expect(part.status == 206)
            #expect(part.headers["content-range"] == "bytes 0-9/\(layer.size)")
            #expect(part.headers["content-length"] == "10")
            let head = try await Self.curl(["-I", blobURL])
            #expect(head.status == 200)
            #expect(head.headers["content-length"] == String(layer.size))
            #expect(head.headers["docker-content-digest"] == layer.digest)
        }
    }

    /// Blobs go out through `sendfile`, downloading (a miss) or stored, whole and in ranges,
    /// interleaved with other answers on one kept-alive connection; every byte is the upstream's.
    @Test func blobsAreSentByTheKernelOnAKeptAliveConnection() async throws {
        try await withPullThrough { env in
            try await withTemporaryDirectory { directory in
                let layer = env.images.singleAMD64.layers[0]
                let path = "/v2/registry.test/test/single/blobs/\(layer.digest)"
                let original = directory.appendingPathComponent("upstream")
                let curl = try requireProgram("curl")
                _ = try await run(curl, ["-s", "-o", original.path, "\(env.upstream.url)/v2/test/single/blobs/\(layer.digest)"])
                let metrics = "\(env.archway.url)/metrics"
                let before = try PrometheusText.parse(try await Self.curl([metrics]).body)
                let files = (0..<5).map { directory.appendingPathComponent("answer\($0)") }
                // A miss (following its download), a hit, a range of it, a manifest, the hit again.
                let result = try await run(
                    curl,
                    [
                        "-s", "-w", "%{http_code} %{num_connects}\n",
                        "-o", files[0].path, env.archway.url + path, "--next",
                        "-w", "%{http_code} %{num_connects}\n", "-o", files[1].path, env.archway.url + path, "--next",
                        "-w", "%{http_code} %{num_connects}\n", "-H", "Range: bytes=7-1030", "-o", files[2].path,
                        env.archway.url + path, "--next",
                        "-w", "%{http_code} %{num_connects}\n", "-H", "Accept: \(Self.oci)", "-o", files[3].path,
                        env.archway.url + "/v2/registry.test/test/single/manifests/amd64", "--next",
                        "-w", "%{http_code} %{num_connects}\n", "-o", files[4].path, env.archway.url + path,
                    ],
                    timeout: .seconds(60)
                )
                #expect(result.stdout == "200 1\n200 0\n206 0\n200 0\n200 0\n", "one connection, reused")
                let upstreamBytes = try Data(contentsOf: original)
                try #require(upstreamBytes.count == layer.size)
                #expect(try Data(contentsOf: files[0]) == upstreamBytes)
                #expect(try Data(contentsOf: files[1]) == upstreamBytes)
                #expect(try Data(contentsOf: files[2]) == upstreamBytes[7...1030])
                #expect(try Data(contentsOf: files[3]).count > 0)
                #expect(try Data(contentsOf: files[4]) == upstreamBytes)
                let after = try PrometheusText.parse(try await Self.curl([metrics]).body)
                let sent = (after["archway_sendfile_responses_total"] ?? 0) - (before["archway_sendfile_responses_total"] ?? 0)
                #expect(sent == 4, "the miss, the hit, the range and the second hit went through sendfile")
            }
        }
    }
}
