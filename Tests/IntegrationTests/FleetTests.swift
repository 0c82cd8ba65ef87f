import ArchwayTesting
import Foundation
import NIOCore
import OCI
import ObjectStorage
import RegistryClient
import Synchronization
import Testing

/// Three real replicas on one radosgw bucket and one PostgreSQL, a real docker-registry behind
/// a proxy that can hold a blob mid-transfer: one upstream fetch per cold blob for the fleet.
@Suite(.serialized) struct FleetTests {
    /// The rule the fleet synthesizes `test/app:<tag>` with, from per-architecture tags.
    static let policy = """
        rules:
          - name: app
            repository: registry.test/test/app
            members:
              - from: "{repository}:amd64-{tag}"
              - from: "{repository}:arm64-{tag}"
        """

    /// Runs `body` with a fleet of three replicas of `env`'s upstream, synthesizing with ``policy``.
    static func withFleet(_ env: CacheEnvironment, _ body: (ArchwayFleet) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            let policies = try writePolicies(Self.policy, in: directory)
            try await withArchwayFleet(configuration: env.configuration() + "policies: \(policies.path)\n", body)
        }
    }

    @Test func eightClientsOverThreeReplicasCostOneUpstreamFetchAndAllStreamAtOnce() async throws {
        try await withCacheEnvironment { env in
            let blob = try await ObjectStorageReplicaTests.push(env, size: 64 << 20, seed: 21)
            try await Self.withFleet(env) { fleet in
                let (replicas, front, gateway, database) = (fleet.replicas, fleet.front, fleet.gateway, fleet.database)
                env.proxy.setBlobFault(.holdAfter(8 << 20))
                let path = "/v2/registry.test/test/big/blobs/\(blob.digest)"
                let firstBytes = Tally()
                let pulls = try await withThrowingTaskGroup(of: StreamedPull.self) { group in
                    // Through the front: nginx spreads them over the three replicas.
                    for _ in 0..<8 {
                        group.addTask { await streamedPull(front.url + path, firstBytes: firstBytes) }
                    }
                    // Every client has bytes while the upstream transfer is held at 8 MiB.
                    try await waitUntil(timeout: .seconds(60), "every client's first bytes while the download runs") {
                        firstBytes.value == 8
                    }
                    #expect(try await gateway.client().length(of: TieredKey.of(blob.digest)) == nil)
                    #expect(try await database.psql("SELECT count(*) FROM content WHERE digest = '\(blob.digest)'") == "0")
                    env.proxy.release()
                    var pulls: [StreamedPull] = []
                    for try await pull in group { pulls.append(pull) }
                    return pulls
                }
                for pull in pulls {
                    #expect(pull.broken == nil && pull.status == 200 && pull.digest == blob.digest && pull.size == 64 << 20, "\(pull)")
                }
                try await env.upstream.waitForAccessLog { $0.path.hasSuffix(blob.digest) }
                #expect(
                    env.upstream.requestCount(method: "GET", pathSuffix: "/blobs/\(blob.digest)") == 1, "one upstream fetch for the fleet")
                #expect(try await gateway.client().length(of: TieredKey.of(blob.digest)) == 64 << 20)
                try await waitUntil(timeout: .seconds(10), "the content row") {
                    (try? await database.psql("SELECT count(*) FROM content WHERE digest = '\(blob.digest)'")) == "1"
                }
                // The internal endpoint is not reachable without the fleet's secret.
                let stranger = try await httpRequest("GET", replicas[0].url + "/_archway/internal/fills/\(blob.digest)")
                #expect(stranger.status == 404, "\(stranger.status)")
                let forged = try await httpRequest(
                    "GET", replicas[0].url + "/_archway/internal/fills/\(blob.digest)",
                    headers: [
                        "Authorization": PeerToken.authorization(
                            secret: Array("not the secret".utf8), digest: Digest(blob.digest)!, at: Date())
                    ])
                #expect(forged.status == 404, "\(forged.status)")
            }
        }
    }

    @Test func whenTheReplicaDownloadingIsKilledAnotherFinishesAndNothingPartialIsVisible() async throws {
        try await withCacheEnvironment { env in
            let blob = try await ObjectStorageReplicaTests.push(env, size: 64 << 20, seed: 22)
            try await Self.withFleet(env) { fleet in
                let (replicas, gateway, database) = (fleet.replicas, fleet.gateway, fleet.database)
                let (owner, b, c) = (replicas[0], replicas[1], replicas[2])
                env.proxy.setBlobFault(.holdAfter(8 << 20))
                let path = "/v2/registry.test/test/big/blobs/\(blob.digest)"
                let firstBytes = Tally()
                let pulls = try await withThrowingTaskGroup(of: StreamedPull.self) { group in
                    // The owner's client first, so the owner is known; then the others follow it.
                    group.addTask { await streamedPull(owner.url + path, firstBytes: firstBytes) }
                    try await waitUntil(timeout: .seconds(30), "the owner's first bytes") { firstBytes.value == 1 }
                    for replica in [b, c] { group.addTask { await streamedPull(replica.url + path, firstBytes: firstBytes) } }
                    try await waitUntil(timeout: .seconds(30), "the followers' first bytes") { firstBytes.value == 3 }
                    await owner.kill()
                    var pulls: [StreamedPull] = []
                    for try await pull in group { pulls.append(pull) }
                    return pulls
                }
                #expect(pulls.allSatisfy { $0.broken != nil || $0.size < 64 << 20 }, "every transfer broke: \(pulls)")
                #expect(
                    try await gateway.client().length(of: TieredKey.of(blob.digest)) == nil, "no partial object")
                #expect(try await database.psql("SELECT count(*) FROM content WHERE digest = '\(blob.digest)'") == "0", "no row")

                // A retry on another replica takes the download over; the third follows it.
                env.proxy.release()
                let retried = try await withThrowingTaskGroup(of: StreamedPull.self) { group in
                    group.addTask { await streamedPull(b.url + path, firstBytes: firstBytes) }
                    try await waitUntil(timeout: .seconds(30), "the retry's first bytes") { firstBytes.value >= 4 }
                    group.addTask { await streamedPull(c.url + path, firstBytes: firstBytes) }
                    var pulls: [StreamedPull] = []
                    for try await pull in group { pulls.append(pull) }
                    return pulls
                }
                for pull in retried {
                    #expect(pull.broken == nil && pull.status == 200 && pull.digest == blob.digest && pull.size == 64 << 20, "\(pull)")
                }
                #expect(env.upstream.requestCount(method: "GET", pathSuffix: "/blobs/\(blob.digest)") <= 2, "two upstream fetches at most")
                #expect(try await gateway.client().length(of: TieredKey.of(blob.digest)) == 64 << 20)
            }
        }
    }
}

extension FleetTests {
    @Test func aTagSynthesizedOnOneReplicaIsPulledByDigestFromTheOthersAndEveryPlatformThroughTheFront() async throws {
        try await withCacheEnvironment { env in
            let uploader = RegistryUploader(env.upstream)
            let amd64 = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "amd64-1.0", platform: .linuxAMD64, format: .oci)
            let arm64 = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "arm64-1.0", platform: .linuxARM64, format: .oci)
            try await Self.withFleet(env) { fleet in
                let (replicas, front) = (fleet.replicas, fleet.front)
                let index = "application/vnd.oci.image.index.v1+json"
                let head = try await httpRequest(
                    "HEAD", replicas[0].url + "/v2/registry.test/test/app/manifests/1.0", headers: ["Accept": index])
                #expect(head.status == 200)
                let digest = try #require(head.header("docker-content-digest"))
                var bodies: Set<Data> = []
                for replica in replicas[1...] {
                    let byDigest = try await httpRequest(
                        "GET", replica.url + "/v2/registry.test/test/app/manifests/\(digest)", headers: ["Accept": index])
                    #expect(byDigest.status == 200 && byDigest.header("docker-content-digest") == digest, "\(byDigest.status)")
                    bodies.insert(byDigest.body)
                }
                #expect(bodies.count == 1)

                try await withTemporaryDirectory { directory in
                    // skopeo, every platform and each one, through the front.
                    let source = "docker://\(front.host)/registry.test/test/app:1.0"
                    try await Skopeo.copy(
                        from: source, to: "oci:\(directory.appendingPathComponent("all").path):x",
                        arguments: ["--all", "--src-tls-verify=false"]
                    ).requireSuccess()
                    for (arch, expected) in [("arm64", arm64), ("amd64", amd64)] {
                        let layout = directory.appendingPathComponent(arch)
                        try await Skopeo.copy(
                            from: source, to: "oci:\(layout.path):x", arguments: ["--override-arch", arch, "--src-tls-verify=false"]
                        ).requireSuccess()
                        #expect(try Skopeo.image(inOCILayout: layout, tag: "x").manifestDigest == expected.manifestDigest)
                    }
                    // containerd's ctr, each platform, through the front as its mirror.
                    try await withContainerd { containerd in
                        try await pullEachPlatform(
                            "registry.test/test/app:1.0", with: containerd, mirror: front.url, in: directory.appendingPathComponent("hosts")
                        )
                    }
                }
            }
        }
    }
}

/// The bucket's key of a digest (`blobs/sha256/<hex>`).
enum TieredKey {
    static func of(_ digest: String) -> String { "blobs/" + digest.replacingOccurrences(of: ":", with: "/") }
}
