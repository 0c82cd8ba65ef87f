import ArchwayTesting
import Foundation
import NIOCore
import ObjectStorage
import RegistryClient
import Testing

/// Archway replicas on one bucket of a real radosgw, the real binary, a real docker-registry
/// upstream: each replica keeps hot blobs on its disk, the bucket keeps them all.
@Suite(.serialized) struct ObjectStorageReplicaTests {
    /// A blob of `size` bytes pushed to `test/big`.
    static func push(_ env: CacheEnvironment, size: Int64, seed: UInt64) async throws -> BlobRef {
        try await withTemporaryDirectory { (directory: URL) async throws -> BlobRef in
            try await RegistryUploader(env.upstream).pushBlob(
                repository: "test/big", file: try makeLargeBlobFile(size: size, seed: seed, in: directory))
        }
    }

    /// `skopeo copy --all` of the standard multi-platform image through `archway`.
    static func copyEveryPlatform(through archway: ArchwayProcess) async throws {
        try await withTemporaryDirectory { (directory: URL) async throws -> Void in
            try await Skopeo.copy(
                from: "docker://\(archway.host)/registry.test/test/multi:1.0", to: "oci:\(directory.path):copy",
                arguments: ["--src-tls-verify=false", "--all"]
            ).requireSuccess()
        }
    }

    @Test func aBlobCrossesTheInternetOnceForTwoReplicasAndSurvivesTheBucketGoingAway() async throws {
        try await withCacheEnvironment { env in
            try await withRadosGateway { gateway in
                try await gateway.client().createBucket()
                let keys = try gateway.storageKeys()
                let blob = try await Self.push(env, size: 24 << 20, seed: 11)
                let other = try await Self.push(env, size: 3 << 20, seed: 12)
                try await withArchwayProcess(configuration: env.configuration(), storageKeys: keys) { first in
                    try await withArchwayProcess(configuration: env.configuration(), storageKeys: keys) { second in
                        let path = "/v2/registry.test/test/big/blobs/\(blob.digest)"
                        let viaFirst = try await CacheEnvironment.fetch(first.url + path)
                        #expect(viaFirst.status == 200 && viaFirst.digest == blob.digest && viaFirst.headers["X-Cache"] == "MISS")
                        #expect(
                            try await gateway.client().length(of: "blobs/\(blob.digest.replacingOccurrences(of: ":", with: "/"))") == 24
                                << 20)

                        // The second replica never saw it: it reads the bucket, not the upstream.
                        let viaSecond = try await CacheEnvironment.fetch(second.url + path)
                        #expect(viaSecond.status == 200 && viaSecond.digest == blob.digest && viaSecond.size == 24 << 20)
                        #expect(viaSecond.headers["X-Cache"] == "HIT")
                        try await env.upstream.waitForAccessLog { $0.path.hasSuffix(blob.digest) }
                        #expect(env.upstream.requestCount(method: "GET", pathSuffix: "/blobs/\(blob.digest)") == 1, "one upstream fetch")
                        #expect(
                            FileManager.default.fileExists(atPath: CacheEnvironment.storedBlob(second, blob.digest).path),
                            "now in its local tier")

                        // A whole image through one replica, then the other: skopeo checks every digest.
                        for archway in [second, first] { try await Self.copyEveryPlatform(through: archway) }

                        // The bucket stops answering: what is on a replica's disk is still served,
                        // a miss is a prompt 503, and readiness says why.
                        await gateway.stopGateway()
                        let hit = try await CacheEnvironment.fetch(first.url + path)
                        #expect(hit.status == 200 && hit.digest == blob.digest)
                        let miss = try await httpRequest("GET", second.url + "/v2/registry.test/test/big/blobs/\(other.digest)")
                        #expect(miss.status == 503, "\(miss.status) \(miss.bodyText)")
                        #expect(miss.bodyText.contains("UNAVAILABLE"), "\(miss.bodyText)")
                        #expect(!miss.bodyText.contains(gateway.host), "the store's address stays in the log: \(miss.bodyText)")
                        let ready = try await httpRequest("GET", second.url + "/_archway/ready")
                        #expect(ready.status == 503 && ready.bodyText.contains("bucket archway"), "\(ready.status) \(ready.bodyText)")

                        // Back again: no restart needed.
                        try await gateway.startGateway()
                        let recovered = try await CacheEnvironment.fetch(second.url + "/v2/registry.test/test/big/blobs/\(other.digest)")
                        #expect(recovered.status == 200 && recovered.digest == other.digest)
                        #expect(try await httpRequest("GET", second.url + "/_archway/ready").status == 200)
                    }
                }
            }
        }
    }

    @Test func withRedirectsAReplicaSendsClientsToTheBucketOnlyForWhatTheirNameMayRead() async throws {
        try await withCacheEnvironment { env in
            try await withRadosGateway { gateway in
                try await gateway.client().createBucket()
                let keys = try gateway.storageKeys(redirect: true)
                let blob = try await Self.push(env, size: 6 << 20, seed: 13)
                try await withArchwayProcess(configuration: env.configuration(), storageKeys: keys) { first in
                    try await withArchwayProcess(configuration: env.configuration(), storageKeys: keys) { second in
                        let path = "/v2/registry.test/test/big/blobs/\(blob.digest)"
                        #expect(try await CacheEnvironment.fetch(first.url + path).digest == blob.digest)
                        // On the first replica's disk: served by it, not redirected.
                        let local = try await CurlTransport().send(UpstreamRequest(url: first.url + path))
                        #expect(local.status == 200)
                        _ = try await local.body.collect(upTo: 8 << 20)

                        // Not on the second's: a redirect to a presigned URL that serves the bytes.
                        let redirected = try await CurlTransport().send(UpstreamRequest(url: second.url + path))
                        _ = try await redirected.body.collect(upTo: 1 << 10)
                        #expect(redirected.status == 307)
                        let location = try #require(redirected.headers["Location"])
                        #expect(location.hasPrefix(gateway.url + "/archway/blobs/sha256/") && location.contains("X-Amz-Signature="))
                        let fetched = try await CacheEnvironment.fetch(location)
                        #expect(fetched.status == 200 && fetched.digest == blob.digest)
                        // A HEAD is answered here, with the length.
                        let head = try await CurlTransport().send(UpstreamRequest(method: .head, url: second.url + path))
                        #expect(head.status == 200 && head.headers["Content-Length"] == String(6 << 20))

                        // A name whose upstream repository lacks the blob gets no URL.
                        let other = try await CurlTransport().send(
                            UpstreamRequest(url: second.url + "/v2/registry.test/test/other/blobs/\(blob.digest)"))
                        _ = try await other.body.collect(upTo: 1 << 16)
                        #expect(other.status == 404 && other.headers["Location"] == nil)

                        // skopeo follows the redirects for a whole image the first replica cached.
                        for archway in [first, second] { try await Self.copyEveryPlatform(through: archway) }
                        let skopeoRedirects = second.output().split(separator: "\n").filter {
                            $0.contains(#""status":"307""#) && $0.contains(#""user_agent":"skopeo"#)
                        }
                        #expect(!skopeoRedirects.isEmpty, "skopeo's blob requests were redirected")
                    }
                }
            }
        }
    }
}
