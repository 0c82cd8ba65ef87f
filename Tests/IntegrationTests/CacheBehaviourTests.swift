import ArchwayTesting
import Foundation
import NIOCore
import RegistryClient
import Synchronization
import Testing

/// The pull-through cache with the real archway binary, a real docker-registry and a proxy
/// between them that can hold, break or falsify blobs.
@Suite(.serialized) struct CacheBehaviourTests {
    @Test func eightConcurrentColdRequestsCostOneUpstreamFetchAndStreamBeforeItEnds() async throws {
        try await withCacheEnvironment { env in
            let blob = try await withTemporaryDirectory { directory in
                let file = try makeLargeBlobFile(size: 64 << 20, seed: 7, in: directory)
                return try await RegistryUploader(env.upstream).pushBlob(repository: "test/big", file: file)
            }
            try await withArchwayProcess(configuration: env.configuration()) { archway in
                // The proxy sends 8 MiB, then holds the rest until every client has its first bytes:
                // a client that only got bytes after the whole download would never get there.
                env.proxy.setBlobFault(.holdAfter(8 << 20))
                let firstBytes = Tally()
                let url = "\(archway.url)/v2/registry.test/test/big/blobs/\(blob.digest)"
                let results = try await withThrowingTaskGroup(of: StreamedPull.self) { group in
                    for _ in 0..<8 {
                        group.addTask { await streamedPull(url, firstBytes: firstBytes) }
                    }
                    try await waitUntil(timeout: .seconds(60), "every client's first bytes while the fill is held") {
                        firstBytes.value == 8
                    }
                    #expect(CacheEnvironment.temporaryFiles(archway).count == 1, "one fill in tmp/")
                    #expect(!FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, blob.digest).path))
                    env.proxy.release()
                    var results: [StreamedPull] = []
                    for try await result in group { results.append(result) }
                    return results
                }
                #expect(results.count == 8)
                for result in results {
                    #expect(result.broken == nil && result.digest == blob.digest && result.size == 64 << 20, "\(result)")
                    #expect(result.cache == "MISS")
                }
                try await env.upstream.waitForAccessLog { $0.path.hasSuffix(blob.digest) }
                #expect(env.upstream.requestCount(method: "GET", pathSuffix: "/blobs/\(blob.digest)") == 1)
                // The followers of the name's own download did not ask whether the blob is theirs.
                #expect(env.upstream.requestCount(method: "HEAD", pathSuffix: "/blobs/\(blob.digest)") == 0)
                let again = try await CacheEnvironment.fetch(url)
                #expect(again.digest == blob.digest)
                #expect(again.headers["X-Cache"] == "HIT")
                #expect(env.upstream.requestCount(method: "GET", pathSuffix: "/blobs/\(blob.digest)") == 1)
            }
        }
    }

    /// A slow client that asked to close the connection (`Connection: close`, as urllib and many
    /// scripts send) still gets every byte, from a running download and from the store: the
    /// close waits for the file to be sent.
    @Test func aClientAskingToCloseGetsTheWholeBlob() async throws {
        try await withCacheEnvironment { env in
            try await withTemporaryDirectory { directory in
                let file = try makeLargeBlobFile(size: 24 << 20, seed: 13, in: directory)
                let blob = try await RegistryUploader(env.upstream).pushBlob(repository: "test/closing", file: file)
                try await withArchwayProcess(configuration: env.configuration()) { archway in
                    let url = "\(archway.url)/v2/registry.test/test/closing/blobs/\(blob.digest)"
                    for (index, expected) in ["MISS", "HIT"].enumerated() {
                        let body = directory.appendingPathComponent("body\(index)")
                        let result = try await run(
                            try requireProgram("curl"),
                            ["-s", "-H", "Connection: close", "--limit-rate", "16M", "-D", "-", "-o", body.path, url],
                            timeout: .seconds(60)
                        )
                        #expect(result.stdout.contains("X-Cache: \(expected)"), "\(result.stdout)")
                        #expect(try sha256OfFile(body) == blob.digest, "the \(expected) answer is whole")
                    }
                }
            }
        }
    }

    /// A blob sent from its running download while the client has already pipelined its next
    /// request (and asked to close): the next answer waits for the blob, in order, and the
    /// connection closes only after both.
    @Test func aPipelinedRequestWaitsForTheDownloadingBlobBeforeIt() async throws {
        try await withCacheEnvironment { env in
            let blob = try await withTemporaryDirectory { directory in
                let file = try makeLargeBlobFile(size: 6 << 20, seed: 11, in: directory)
                return try await RegistryUploader(env.upstream).pushBlob(repository: "test/piped", file: file)
            }
            try await withArchwayProcess(configuration: env.configuration()) { archway in
                env.proxy.setBlobFault(.holdAfter(1 << 20))
                let address = archway.url.replacingOccurrences(of: "http://", with: "")
                let script = """
                    import hashlib, socket, sys
                    host, port = sys.argv[1].rsplit(":", 1)
                    s = socket.create_connection((host, int(port)))
                    s.sendall(("GET /v2/registry.test/test/piped/blobs/%s HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"
                               "GET /v2/ HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n" % sys.argv[2]).encode())
                    data = b""
                    while chunk := s.recv(1 << 20):
                        data += chunk
                    head, rest = data.split(b"\\r\\n\\r\\n", 1)
                    length = int([l for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
                    body, second = rest[:length], rest[length:]
                    print(head.split(b"\\r\\n")[0].decode())
                    print("sha256:" + hashlib.sha256(body).hexdigest())
                    print(second.split(b"\\r\\n")[0].decode())
                    print(second.split(b"\\r\\n\\r\\n", 1)[1].decode())
                    """
                async let output = run(try requireProgram("python3"), ["-c", script, address, blob.digest], timeout: .seconds(60))
                try await waitUntil(timeout: .seconds(30), "the download is held") {
                    CacheEnvironment.temporaryFiles(archway).count == 1
                }
                // The pipelined request was answered (its answer held behind the blob's).
                try await waitUntil(timeout: .seconds(30), "the second request is answered") {
                    AccessLogTests.accessLines(archway, path: "/v2/").count == 1
                }
                env.proxy.release()
                let lines = try await output.stdout.split(separator: "\n").map(String.init)
                #expect(lines == ["HTTP/1.1 200 OK", blob.digest, "HTTP/1.1 200 OK", "{}"], "\(lines)")
            }
        }
    }

    @Test func pullsSurviveAnUpstreamOutage() async throws {
        try await withCacheEnvironment { env in
            // tag-ttl 0: every pull asks the upstream, so the outage is really felt.
            try await withArchwayProcess(configuration: env.configuration(tagTTL: "0")) { archway in
                try await withContainerd { containerd in
                    try await withTemporaryDirectory { directory in
                        let hosts = directory.appendingPathComponent("hosts")
                        try Containerd.writeHostsToml(
                            directory: hosts, registry: "registry.test", server: "http://127.0.0.1:9", mirror: archway.url)
                        let source = "docker://\(archway.host)/registry.test/test/multi"
                        let byDigest = "\(source)@\(env.images.multi.digest)"
                        func pullEverything(_ round: String) async throws {
                            for (index, reference) in ["\(source):1.0", byDigest].enumerated() {
                                let layout = directory.appendingPathComponent("\(round)-\(index)")
                                try await Skopeo.copy(
                                    from: reference, to: "oci:\(layout.path):x", arguments: ["--all", "--src-tls-verify=false"]
                                )
                                .requireSuccess()
                                #expect(try Skopeo.layoutEntry(layout, tag: "x").digest == env.images.multi.digest, "\(round) \(reference)")
                            }
                            for reference in ["registry.test/test/multi:1.0", "registry.test/test/multi@\(env.images.multi.digest)"] {
                                let pull = try await containerd.pull(reference, hostsDir: hosts, platform: "linux/arm64")
                                #expect(pull.succeeded, "\(round) ctr \(reference): \(pull)")
                                #expect(try await containerd.imageConfigArchitecture(reference, platform: "linux/arm64") == "arm64")
                                try await containerd.removeImage(reference)
                            }
                        }
                        try await pullEverything("online")
                        await env.proxy.stop()
                        await env.upstream.stop()
                        try await pullEverything("offline")

                        let stale = try await httpRequest(
                            "GET", "\(archway.url)/v2/registry.test/test/multi/manifests/1.0",
                            headers: [
                                "Accept": "application/vnd.oci.image.index.v1+json"
                            ])
                        #expect(stale.status == 200)
                        #expect(stale.header("x-cache") == "STALE")
                        let started = ContinuousClock.now
                        let never = try await httpRequest("GET", "\(archway.url)/v2/registry.test/test/multi/manifests/never-pulled")
                        #expect(never.status == 503)
                        #expect(never.bodyText.contains("UNAVAILABLE"))
                        #expect(ContinuousClock.now - started < .seconds(30), "a clear error, not a hang")
                        #expect(try await httpRequest("GET", "\(archway.url)/v2/").status == 200)
                    }
                }
            }
        }
    }

    @Test func brokenOrLyingUpstreamsLeaveNothingInTheCache() async throws {
        try await withCacheEnvironment { env in
            try await withArchwayProcess(configuration: env.configuration()) { archway in
                let layer = env.images.singleARM64.layers[0]
                let url = "\(archway.url)/v2/registry.test/test/single/blobs/\(layer.digest)"
                for fault in [FaultInjectingProxy.BlobFault.dropAfter(100), .corrupt] {
                    env.proxy.setBlobFault(fault)
                    let broken = try? await CacheEnvironment.fetch(url)
                    #expect(broken == nil || broken?.digest != layer.digest, "\(fault): a client got the whole blob")
                    try await waitUntil(timeout: .seconds(10), "the failed fill to be cleaned up") {
                        CacheEnvironment.temporaryFiles(archway).isEmpty
                    }
                    #expect(!FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, layer.digest).path), "\(fault)")
                }
                env.proxy.setBlobFault(.none)
                let good = try await CacheEnvironment.fetch(url)
                #expect(good.status == 200)
                #expect(good.digest == layer.digest)
                #expect(good.headers["X-Cache"] == "MISS")
                #expect(FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, layer.digest).path))
                #expect(archway.output().contains("blob download failed"))
            }
        }
    }

    @Test func killedDuringAFillNothingPartialIsServedAndTheFillIsRedone() async throws {
        try await withCacheEnvironment { env in
            let blob = try await RegistryUploader(env.upstream).pushBlob(
                repository: "test/kill", data: Data((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            )
            let archway = try await ArchwayProcess.start(configuration: env.configuration())
            defer { Task { await archway.close() } }
            let url = "\(archway.url)/v2/registry.test/test/kill/blobs/\(blob.digest)"
            env.proxy.setBlobFault(.holdAfter(1 << 20))
            let client = Task { try? await CacheEnvironment.fetch(url) }
            try await waitUntil(timeout: .seconds(20), "a partial fill in tmp/") {
                CacheEnvironment.temporaryFiles(archway).count == 1
            }
            await archway.kill()
            _ = await client.value
            #expect(!FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, blob.digest).path))
            env.proxy.setBlobFault(.none)
            try await archway.restart()
            #expect(CacheEnvironment.temporaryFiles(archway).isEmpty, "start-up removes leftovers in tmp/")
            let answer = try await CacheEnvironment.fetch(url)
            #expect(answer.digest == blob.digest)
            #expect(answer.headers["X-Cache"] == "MISS")
            try await env.upstream.waitForAccessLog { $0.path.hasSuffix(blob.digest) && $0.status == 200 }
            #expect(env.upstream.requestCount(method: "GET", pathSuffix: "/blobs/\(blob.digest)") == 2)
            await archway.close()
        }
    }

    @Test func tagTTLDecidesWhenAMovedTagIsSeen() async throws {
        try await withCacheEnvironment { env in
            let uploader = RegistryUploader(env.upstream)
            let accept = ["Accept": "application/vnd.oci.image.manifest.v1+json"]
            try await withArchwayProcess(configuration: env.configuration(tagTTL: "1h")) { patient in
                try await withArchwayProcess(configuration: env.configuration(tagTTL: "0")) { eager in
                    let path = "/v2/registry.test/test/single/manifests/amd64"
                    for archway in [patient, eager] {
                        let first = try await httpRequest("GET", archway.url + path, headers: accept)
                        #expect(first.header("docker-content-digest") == env.images.singleAMD64.manifestDigest)
                    }
                    // The tag moves upstream.
                    let moved = try await ImageBuilder.pushImage(
                        to: uploader, repository: "test/single", tag: "amd64", platform: .linuxAMD64, format: .oci, layerPayload: "moved"
                    )
                    var mark = env.upstream.accessLogMark()
                    let cached = try await httpRequest("GET", patient.url + path, headers: accept)
                    #expect(cached.header("docker-content-digest") == env.images.singleAMD64.manifestDigest, "not before tag-ttl")
                    #expect(cached.header("x-cache") == "HIT")
                    #expect(env.upstream.accessLog(since: mark).isEmpty)

                    mark = env.upstream.accessLogMark()
                    let fresh = try await httpRequest("GET", eager.url + path, headers: accept)
                    #expect(fresh.header("docker-content-digest") == moved.manifestDigest, "tag-ttl 0 sees the move at once")
                    try await env.upstream.waitForAccessLog { $0.path.hasSuffix(moved.manifestDigest) }
                    let requests = env.upstream.accessLog(since: mark).map { "\($0.method) \($0.path)" }
                    #expect(requests == ["HEAD /v2/test/single/manifests/amd64", "GET /v2/test/single/manifests/\(moved.manifestDigest)"])

                    mark = env.upstream.accessLogMark()
                    let again = try await httpRequest("GET", eager.url + path, headers: accept)
                    #expect(again.header("x-cache") == "HIT")
                    try await env.upstream.waitForAccessLog { _ in true }
                    #expect(
                        env.upstream.accessLog(since: mark).map { "\($0.method) \($0.path)" } == ["HEAD /v2/test/single/manifests/amd64"])
                }
            }
        }
    }

    @Test func evictionKeepsTheStoreUnderItsLimitLeastRecentlyUsedFirst() async throws {
        try await withCacheEnvironment { env in
            let uploader = RegistryUploader(env.upstream)
            var blobs: [BlobRef] = []
            for index in 0..<5 {
                blobs.append(try await uploader.pushBlob(repository: "test/evict", data: Data(repeating: UInt8(index), count: 1 << 20)))
            }
            try await withArchwayProcess(configuration: env.configuration(), maxSize: "3MiB") { archway in
                func get(_ blob: BlobRef) async throws -> String? {
                    let answer = try await CacheEnvironment.fetch("\(archway.url)/v2/registry.test/test/evict/blobs/\(blob.digest)")
                    #expect(answer.digest == blob.digest)
                    return answer.headers["X-Cache"]
                }
                func stored(_ blob: BlobRef) -> Bool {
                    FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, blob.digest).path)
                }
                func storeSize() -> Int64 {
                    blobs.filter(stored).reduce(0) { $0 + $1.size }
                }
                for blob in blobs[0..<3] { _ = try await get(blob) }
                #expect(blobs[0..<3].allSatisfy(stored))
                // Blob 0 is used again, so blob 1 is now the least recently used.
                #expect(try await get(blobs[0]) == "HIT")
                _ = try await get(blobs[3])
                try await waitUntil(timeout: .seconds(10), "eviction after the fill") { !stored(blobs[1]) }
                #expect(stored(blobs[0]) && stored(blobs[2]) && stored(blobs[3]))
                #expect(storeSize() <= 3 << 20)
                _ = try await get(blobs[4])
                try await waitUntil(timeout: .seconds(10), "eviction after the fill") { !stored(blobs[2]) }
                #expect(storeSize() <= 3 << 20)
                #expect(try await get(blobs[1]) == "MISS", "an evicted blob is fetched again")
            }
        }
    }
}

/// A count shared by concurrent tasks.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)

    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
