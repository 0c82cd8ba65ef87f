import ArchwayTesting
import Cache
import Foundation
import Logging
import OCI
import Policies
import Testing

@testable import Proxy

/// The warm path (`warmManifest`): it answers only what the full path answered and would answer
/// again unchanged, with the full path's effects, and leaves everything else to it.
@Suite struct WarmManifestTests {
    static let amd64 = Platform(os: "linux", architecture: "amd64")
    static let arm64 = Platform(os: "linux", architecture: "arm64")
    let hub = InMemoryUpstream(name: "docker.io")
    let clock: TestClock
    let catalog: any Catalog
    let registry: PullThroughRegistry
    let route: UpstreamRouter.Route

    init() throws {
        let clock = TestClock()
        self.clock = clock
        catalog = try SQLiteCatalog.inMemory()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-warm-\(UInt64.random(in: 0...UInt64.max))")
        registry = PullThroughRegistry(
            router: try UpstreamRouter([.init(upstream: hub)], defaultUpstream: "docker.io"),
            policies: PolicySet(
                rules: try PolicyLoader(upstreams: ["docker.io"]).parse(
                    """
                    rules:
                      - name: multi
                        repository: docker.io/library/app
                        tags: ["multi"]
                        members:
                          - from: "{repository}:amd64-1.0"
                          - from: "{repository}:arm64-1.0"
                    """, file: "rules.yaml")),
            store: try LocalBlobStore(layout: StorageLayout(root: root)),
            catalog: catalog,
            tagTTL: .seconds(60),
            now: { clock.now },
            logger: Logger(label: "test")
        )
        route = try registry.resolve(try RepositoryName("app"), namespace: nil)
    }

    func full(_ reference: ManifestReference, _ client: Client = .unknown) async throws -> ManifestAnswer {
        try await registry.manifest(route, reference, accepting: [], client: client)
    }

    func warm(_ reference: ManifestReference, _ client: Client = .unknown, accepting: [String] = []) -> ManifestAnswer? {
        registry.warmManifest(route, reference, accepting: accepting, client: client)
    }

    @Test func aTagIsWarmOnlyAfterTheFullPathAnsweredItAndUntilItsTTLEnds() async throws {
        let image = InMemoryImages.image(hub, repository: "library/app", tag: "1.0", platform: Self.amd64)
        let tag = ManifestReference.tag(try Tag("1.0"))
        #expect(warm(tag) == nil, "nothing is warm before the full path answered")
        #expect(try await full(tag).cache == .miss)
        let answer = try #require(warm(tag))
        #expect(answer.manifest.digest == image.digest && answer.cache == .hit)
        #expect(warm(tag, accepting: ["application/vnd.oci.image.index.v1+json"]) == nil, "another Accept set is another question")
        clock.advance(59)
        #expect(warm(tag) != nil)
        clock.advance(2)
        #expect(warm(tag) == nil, "past the TTL the full path revalidates")
        let calls = hub.calls.count
        #expect(try await full(tag).cache == .hit)
        #expect(hub.calls.count == calls + 1, "one HEAD")
        #expect(warm(tag) != nil, "warm again after the revalidation")
    }

    @Test func aDigestIsWarmForTheNameThatReadItOnly() async throws {
        let image = InMemoryImages.image(hub, repository: "library/app", tag: "1.0", platform: Self.amd64)
        let digest = ManifestReference.digest(image.digest)
        _ = try await full(digest)
        #expect(warm(digest)?.manifest.digest == image.digest)
        let other = try registry.resolve(try RepositoryName("someone/else"), namespace: nil)
        #expect(registry.warmManifest(other, digest, accepting: [], client: .unknown) == nil, "another name asks the full path")
        clock.advance(86400 * 365)
        #expect(warm(digest) != nil, "content never changes under a digest")
    }

    @Test func synthesizedTagsAndStaleAnswersAreNeverWarm() async throws {
        InMemoryImages.image(hub, repository: "library/app", tag: "amd64-1.0", platform: Self.amd64)
        InMemoryImages.image(hub, repository: "library/app", tag: "arm64-1.0", platform: Self.arm64)
        InMemoryImages.image(hub, repository: "library/app", tag: "2.0", platform: Self.amd64)
        _ = try await full(.tag(try Tag("multi")))
        #expect(warm(.tag(try Tag("multi"))) == nil)
        _ = try await full(.tag(try Tag("2.0")))
        clock.advance(120)
        hub.isReachable = false
        #expect(try await full(.tag(try Tag("2.0"))).cache == .stale)
        #expect(warm(.tag(try Tag("2.0"))) == nil)
    }

    @Test func aClientWhosePlatformTheAnswerLacksGoesTheFullPathWhichRecordsIt() async throws {
        InMemoryImages.image(hub, repository: "library/app", tag: "1.0", platform: Self.amd64)
        let tag = ManifestReference.tag(try Tag("1.0"))
        let amd64Node = Client(address: "10.0.0.1", userAgent: "cri-o/1 os/linux arch/amd64")
        let arm64Node = Client(address: "10.0.0.2", userAgent: "cri-o/1 os/linux arch/arm64")
        let anonymous = Client(address: "10.0.0.3", userAgent: "skopeo/1.9.3")
        _ = try await full(tag, anonymous)
        #expect(warm(tag, anonymous) != nil, "an image by tag is not judged for a client that states no platform")
        #expect(warm(tag, amd64Node) == nil, "its platform is not known without reading the config")
        _ = try await full(tag, amd64Node)
        #expect(warm(tag, amd64Node) != nil, "now it is, and it fits")
        #expect(warm(tag, arm64Node) == nil, "it does not fit: the full path answers with a warning and records it")
        let answer = try await full(tag, arm64Node)
        #expect(answer.warning != nil)
        #expect(try await catalog.mismatches(since: nil).count == 1)
    }

    @Test func anIndexWithoutTheClientsPlatformIsNotWarmForItAndTeachesTheOthers() async throws {
        let child = InMemoryImages.image(hub, repository: "library/multi", tag: nil, platform: Self.amd64)
        InMemoryImages.index(hub, repository: "library/multi", tag: "1.0", children: [(child, Self.amd64)])
        let multi = try registry.resolve(try RepositoryName("multi"), namespace: nil)
        let tag = ManifestReference.tag(try Tag("1.0"))
        let containerd = Client(address: "10.0.0.9", userAgent: "containerd/1.6.20")
        _ = try await registry.manifest(multi, tag, accepting: [], client: containerd)
        _ = try await registry.manifest(multi, .digest(child.digest), accepting: [], client: containerd)
        #expect(registry.warmManifest(multi, tag, accepting: [], client: containerd) != nil)
        #expect(registry.warmManifest(multi, .digest(child.digest), accepting: [], client: containerd) != nil)
        // containerd stated nothing; fetching the amd64 child taught its platform, as the full path would.
        #expect(registry.auditor.platform(of: containerd)?.platform == Self.amd64)
        let arm64Node = Client(address: "10.0.0.2", userAgent: "cri-o/1 os/linux arch/arm64")
        #expect(registry.warmManifest(multi, tag, accepting: [], client: arm64Node) == nil)
    }
}
