import ArchwayTesting
import Cache
import Foundation
import Logging
import OCI
import Proxy
import SharedState
import Testing

/// A replica with a shared catalog keeps a tag's warm answer for a second at most, whatever
/// its `tag-ttl`: another replica may move the tag in the catalog at any time.
@Suite(.serialized) struct WarmSharedCatalogTests {
    @Test func aReplicaAnswersATagFromMemoryForOneSecondAtMost() async throws {
        try await withPostgres { server in
            try await withPostgresCatalog(server) { catalog in
                try await catalog.migrate()
                let hub = InMemoryUpstream(name: "docker.io")
                let clock = TestClock()
                let root = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "archway-shared-\(UInt64.random(in: 0...UInt64.max))")
                defer { try? FileManager.default.removeItem(at: root) }
                let registry = PullThroughRegistry(
                    router: try UpstreamRouter([.init(upstream: hub)], defaultUpstream: "docker.io"),
                    store: try LocalBlobStore(layout: StorageLayout(root: root)),
                    catalog: catalog,
                    tagTTL: .seconds(60),
                    now: { clock.now },
                    logger: Logger(label: "test")
                )
                let route = try registry.resolve(try RepositoryName("app"), namespace: nil)
                let image = InMemoryImages.image(
                    hub, repository: "library/app", tag: "1.0", platform: Platform(os: "linux", architecture: "amd64"))
                let tag = ManifestReference.tag(try Tag("1.0"))
                func warm() -> ManifestAnswer? { registry.warmManifest(route, tag, accepting: [], client: .unknown) }

                #expect(try await registry.manifest(route, tag, accepting: [], client: .unknown).cache == .miss)
                #expect(warm()?.manifest.digest == image.digest)
                clock.advance(0.9)
                #expect(warm() != nil)
                clock.advance(0.2)
                #expect(warm() == nil, "past a second the full path asks the shared catalog (the TTL of 60 s is far)")
                let calls = hub.calls.count
                #expect(try await registry.manifest(route, tag, accepting: [], client: .unknown).cache == .hit)
                #expect(hub.calls.count == calls, "the catalog answered, not the upstream")
                #expect(warm() != nil, "warm again, for another second")
            }
        }
    }
}
