import ArchwayTesting
import Foundation
import ObjectStorage
import Testing

/// Replicas on one bucket and one PostgreSQL catalog, the real binary, a real docker-registry:
/// what one replica learned, every replica knows; the database going away and coming back.
@Suite(.serialized) struct SharedCatalogTests {
    static let accept = "application/vnd.oci.image.manifest.v1+json"

    @Test func replicasShareTagsAndMismatchesAndOutliveTheDatabaseGoingAway() async throws {
        try await withCacheEnvironment { env in
            try await withRadosGateway { gateway in
                try await withPostgres { database in
                    try await gateway.client().createBucket()
                    let storage = try gateway.storageKeys()
                    let configuration =
                        env.configuration(tagTTL: "5s") + """
                            catalog:
                              postgres:
                                url: \(database.url)?sslmode=disable

                            """
                    let uploader = RegistryUploader(env.upstream)
                    let first = try await ImageBuilder.pushImage(
                        to: uploader, repository: "test/moving", tag: "1", platform: .linuxAMD64, format: .oci)
                    try await withArchwayProcess(configuration: configuration, storageKeys: storage) { a in
                        try await withArchwayProcess(configuration: configuration, storageKeys: storage) { b in
                            let single = "/v2/registry.test/test/single/manifests/amd64"
                            // An arm64 node pulls an amd64-only tag on A: a mismatch, and the tag in the catalog.
                            let onA = try await httpRequest(
                                "GET", a.url + single, headers: ["Accept": Self.accept, "Archway-Platform": "linux/arm64"])
                            #expect(onA.status == 200 && onA.header("x-cache") == "MISS")
                            // B answers it from the shared catalog: no second upstream GET.
                            let onB = try await httpRequest("GET", b.url + single, headers: ["Accept": Self.accept])
                            #expect(
                                onB.status == 200 && onB.header("x-cache") == "HIT",
                                "\(onB.status) \(String(describing: onB.header("x-cache")))")
                            #expect(onB.body == onA.body)
                            #expect(env.upstream.requestCount(method: "GET", pathSuffix: "/test/single/manifests/amd64") == 1)

                            // The mismatch seen on A is in `archway mismatches` run against the shared catalog.
                            try await withTemporaryDirectory { directory in
                                let file = directory.appendingPathComponent("archway.yaml")
                                let keys = storage.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n")
                                try ("storage:\n  path: \(directory.path)/storage\n\(keys)\n" + configuration).write(
                                    to: file, atomically: true, encoding: .utf8)
                                let report = try await run(
                                    try ArchwayProcess.binaryPath(), ["mismatches", "--json", "--config", file.path]
                                ).requireSuccess()
                                let rows = try #require(try JSONSerialization.jsonObject(with: report.stdoutData) as? [[String: Any]])
                                #expect(
                                    rows.contains {
                                        ($0["repository"] as? String) == "registry.test/test/single"
                                            && ($0["client_platform"] as? String) == "linux/arm64"
                                    },
                                    "\(report.stdout)")
                            }

                            // A tag moved upstream is seen by both replicas once the tag TTL has passed.
                            let moving = "/v2/registry.test/test/moving/manifests/1"
                            for replica in [a, b] {
                                let answer = try await httpRequest("GET", replica.url + moving, headers: ["Accept": Self.accept])
                                #expect(answer.header("docker-content-digest") == first.manifestDigest)
                            }
                            let second = try await ImageBuilder.pushImage(
                                to: uploader, repository: "test/moving", tag: "1", platform: .linuxARM64, format: .oci)
                            try await Task.sleep(for: .milliseconds(5500))
                            for replica in [a, b] {
                                let answer = try await httpRequest("GET", replica.url + moving, headers: ["Accept": Self.accept])
                                #expect(answer.header("docker-content-digest") == second.manifestDigest)
                            }

                            // PostgreSQL stops: what A holds in memory and on disk is still served;
                            // what needs the catalog is a prompt 503; both recover without a restart.
                            let layer = "/v2/registry.test/test/moving/blobs/\(second.layerDigests[0])"
                            #expect(try await httpRequest("GET", a.url + layer).status == 200)
                            let byDigest = "/v2/registry.test/test/moving/manifests/\(second.manifestDigest)"
                            #expect(try await httpRequest("GET", a.url + byDigest, headers: ["Accept": Self.accept]).status == 200)
                            // The download above is served while it runs and recorded after its
                            // last byte: the database stops only once A has recorded it.
                            try await waitUntil(timeout: .seconds(10), "A's download recorded") {
                                let metrics = (try? await httpRequest("GET", a.url + "/metrics"))?.bodyText ?? ""
                                return metrics.split(separator: "\n").contains { line in
                                    line.hasPrefix("archway_fills_in_flight ") && Double(line.split(separator: " ").last ?? "") == 0
                                }
                            }
                            await database.stop()
                            #expect(try await httpRequest("GET", a.url + layer).status == 200, "the local tier")
                            #expect(
                                try await httpRequest("GET", a.url + byDigest, headers: ["Accept": Self.accept]).status == 200, "memory")
                            let started = ContinuousClock.now
                            let uncached = try await httpRequest(
                                "GET", b.url + "/v2/registry.test/test/single/manifests/arm64", headers: ["Accept": Self.accept])
                            #expect(
                                uncached.status == 503 && uncached.bodyText.contains("catalog database"),
                                "\(uncached.status) \(uncached.bodyText)")
                            #expect(started.duration(to: .now) < .seconds(20), "prompt, not a hang")
                            try await database.launch()
                            try await waitUntil(timeout: .seconds(30), "B to answer again") {
                                (try? await httpRequest(
                                    "GET", b.url + "/v2/registry.test/test/single/manifests/arm64", headers: ["Accept": Self.accept]))?
                                    .status == 200
                            }
                        }
                    }
                }
            }
        }
    }
}
