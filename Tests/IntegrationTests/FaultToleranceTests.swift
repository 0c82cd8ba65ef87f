import ArchwayTesting
import Foundation
import Testing

/// Upstreams that hang, fail, rate-limit or lie, hostile ranges, and a full disk, against the
/// real archway binary: clear errors, nothing wrong cached, nobody held forever.
@Suite(.serialized) struct FaultToleranceTests {
    @Test func aStalledUpstreamTimesOutWithAClearError() async throws {
        let stalling = try StallingServer()
        defer { stalling.stop() }
        try await withArchwayProcess(
            configuration: singleUpstreamConfiguration(stalling.url, extra: "connect-timeout: 2s\nstall-timeout: 2s\n")
        ) { archway in
            for path in ["manifests/1.0", "blobs/sha256:\(String(repeating: "a", count: 64))"] {
                let started = ContinuousClock.now
                let answer = try await httpRequest("GET", "\(archway.url)/v2/test/app/\(path)", timeout: 60)
                #expect(answer.status == 503, "\(path)")
                #expect(answer.bodyText.contains("UNAVAILABLE"), "\(answer.bodyText)")
                #expect(
                    answer.bodyText.lowercased().contains("too slow") || answer.bodyText.lowercased().contains("timed out"),
                    "\(answer.bodyText)")
                #expect(ContinuousClock.now - started < .seconds(30), "the client is not held forever")
            }
            #expect(stalling.connections >= 2)
        }
    }

    @Test func failingRateLimitedAndLyingUpstreams() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            let proxy = try await FaultInjectingProxy.start(upstream: upstream.url)
            defer { Task { await proxy.stop() } }
            try await withArchwayProcess(configuration: singleUpstreamConfiguration(proxy.url, extra: "tag-ttl: 0\n")) { archway in
                let tag = "\(archway.url)/v2/test/single/manifests/amd64"
                let accept = ["Accept": "application/vnd.oci.image.manifest.v1+json"]

                proxy.setManifestFault(.status(500, [:]))
                let failed = try await httpRequest("GET", tag, headers: accept)
                #expect(failed.status == 503)
                #expect(failed.bodyText.contains("UNAVAILABLE"))

                proxy.setManifestFault(.status(429, ["Retry-After": "7"]))
                let limited = try await httpRequest("GET", tag, headers: accept)
                #expect(limited.status == 429)
                #expect(limited.header("retry-after") == "7")
                #expect(limited.bodyText.contains("TOOMANYREQUESTS"))

                for fault in [FaultInjectingProxy.ManifestFault.notJSON, .huge] {
                    proxy.setManifestFault(fault)
                    let lying = try await httpRequest("GET", tag, headers: accept)
                    #expect(lying.status == 503, "\(fault)")
                    #expect(lying.bodyText.contains("invalid upstream response"), "\(fault): \(lying.bodyText)")
                }
                #expect(archway.output().contains("larger than 4194304 bytes"))

                // Nothing of that was cached: the next good answer is a miss, then rate limits
                // and failures get the cached answer.
                proxy.setManifestFault(.none)
                let good = try await httpRequest("GET", tag, headers: accept)
                #expect(good.status == 200)
                #expect(good.header("x-cache") == "MISS")
                #expect(good.header("docker-content-digest") == images.singleAMD64.manifestDigest)
                for fault in [FaultInjectingProxy.ManifestFault.status(429, ["Retry-After": "7"]), .status(503, [:])] {
                    proxy.setManifestFault(fault)
                    let stale = try await httpRequest("GET", tag, headers: accept)
                    #expect(stale.status == 200, "\(fault)")
                    #expect(stale.header("x-cache") == "STALE", "\(fault)")
                }
                proxy.setManifestFault(.none)
            }
        }
    }

    @Test func hostileRangesGetTheRightAnswers() async throws {
        try await withUpstreamRegistry { upstream in
            let blob = try await RegistryUploader(upstream).pushBlob(
                repository: "test/range", data: Data((0..<1000).map { UInt8($0 % 251) }))
            try await withArchwayProcess(configuration: singleUpstreamConfiguration(upstream.url)) { archway in
                let url = "\(archway.url)/v2/test/range/blobs/\(blob.digest)"
                _ = try await httpRequest("GET", url)
                let cases: [(String, Int, String?, Int)] = [
                    ("bytes=0-9", 206, "bytes 0-9/1000", 10),
                    ("bytes=990-", 206, "bytes 990-999/1000", 10),
                    ("bytes=-5", 206, "bytes 995-999/1000", 5),
                    ("bytes=900-5000", 206, "bytes 900-999/1000", 100),
                    ("bytes=9-0", 200, nil, 1000),
                    ("bytes=0-1,5-6", 200, nil, 1000),
                    ("bytes=abc", 200, nil, 1000),
                    ("items=0-1", 200, nil, 1000),
                    ("bytes=99999999999999999999999-", 200, nil, 1000),
                    ("bytes=1000-", 416, "bytes */1000", -1),
                ]
                for (range, status, contentRange, length) in cases {
                    let answer = try await httpRequest("GET", url, headers: ["Range": range])
                    #expect(answer.status == status, "\(range)")
                    #expect(answer.header("content-range") == contentRange, "\(range)")
                    if length >= 0 { #expect(answer.body.count == length, "\(range)") }
                }
            }
        }
    }

    @Test func aFullDiskFailsNewFillsCleanlyKeepsServingAndRecovers() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            let big = try await RegistryUploader(upstream).pushBlob(
                repository: "test/big", data: Data((0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            )
            try await withTemporaryDirectory { directory in
                let storage = directory.appendingPathComponent("small")
                try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
                let mount = try await run("/bin/mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", storage.path])
                guard mount.succeeded else {
                    // Mounting needs privileges a sandbox may not grant: say so, loudly.
                    print("SKIPPED aFullDiskFailsNewFillsCleanly: cannot mount a tmpfs here (\(mount.stderr))")
                    return
                }
                defer { Task { _ = try? await run("/bin/umount", ["-l", storage.path]) } }
                let archway = try await ArchwayProcess.start(configuration: singleUpstreamConfiguration(upstream.url), storage: storage)
                let layer = images.singleAMD64.layers[0]
                let small = "\(archway.url)/v2/test/single/blobs/\(layer.digest)"
                #expect(try await httpRequest("GET", small).status == 200)

                let bigURL = "\(archway.url)/v2/test/big/blobs/\(big.digest)"
                let full = try? await CacheEnvironment.fetch(bigURL)
                #expect(full == nil || full?.digest != big.digest, "a fill that cannot be stored never completes a transfer")
                try await waitUntil(timeout: .seconds(10), "the failed fill to be removed") {
                    CacheEnvironment.temporaryFiles(archway).isEmpty
                }
                #expect(!FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(archway, big.digest).path))
                let cached = try await httpRequest("GET", small)
                #expect(cached.status == 200)
                #expect(cached.header("x-cache") == "HIT")
                #expect(sha256Digest(cached.body) == layer.digest)

                try await run("/bin/mount", ["-o", "remount,size=64m", storage.path]).requireSuccess()
                let recovered = try await CacheEnvironment.fetch(bigURL)
                #expect(recovered.digest == big.digest)
                await archway.close()
            }
        }
    }
}
