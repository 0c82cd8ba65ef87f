import ArchwayTesting
import Cache
import CoreMetrics
import Foundation
import Logging
import MetricsTestKit
import NIOCore
import OCI
import Proxy
import RegistryClient
import Synchronization
import Testing

@Suite struct PullThroughRegistryTests {
    let hub = InMemoryUpstream(name: "docker.io")
    let clock = TestClock()
    let registry: PullThroughRegistry
    let amd64 = Platform(os: "linux", architecture: "amd64")

    init() throws {
        registry = try Self.registry(hub, clock: clock, offline: false)
    }

    static func registry(
        _ upstream: InMemoryUpstream, clock: TestClock, offline: Bool, store: LocalBlobStore? = nil, catalog: (any Catalog)? = nil
    )
        throws
        -> PullThroughRegistry
    {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-proxy-\(UInt64.random(in: 0...UInt64.max))")
        return PullThroughRegistry(
            router: try UpstreamRouter([.init(upstream: upstream)], defaultUpstream: upstream.name),
            store: try store ?? LocalBlobStore(layout: StorageLayout(root: root)),
            catalog: try catalog ?? SQLiteCatalog.inMemory(),
            tagTTL: .seconds(60),
            offline: offline,
            now: { clock.now },
            logger: Logger(label: "test")
        )
    }

    func pull(_ tag: String) async throws -> ManifestAnswer {
        try await registry.manifest(
            try RepositoryName("library/app"), .tag(try Tag(tag)), namespace: nil, accepting: [MediaType.ociManifest.rawValue])
    }

    @Test func aTagIsTrustedForItsTTLThenRevalidatedWithOneHEAD() async throws {
        let old = InMemoryImages.image(hub, repository: "library/app", tag: "1", platform: amd64)
        #expect(try await pull("1").cache == .miss)
        let moved = InMemoryImages.image(hub, repository: "library/app", tag: "1", platform: amd64, layer: Data("new".utf8))
        clock.advance(59)
        let cached = try await pull("1")
        #expect(cached.manifest.digest == old.digest, "not before tag-ttl")
        #expect(cached.cache == .hit)
        clock.advance(2)
        let fresh = try await pull("1")
        #expect(fresh.manifest.digest == moved.digest, "seen after tag-ttl")
        #expect(fresh.cache == .miss)
        clock.advance(61)
        #expect(try await pull("1").cache == .hit, "unchanged after revalidation")
        #expect(
            hub.calls == ["manifest library/app 1", "head library/app 1", "manifest library/app \(moved.digest)", "head library/app 1"])
    }

    @Test func anUnavailableUpstreamGetsTheStaleAnswer() async throws {
        let image = InMemoryImages.image(hub, repository: "library/app", tag: "1", platform: amd64)
        _ = try await pull("1")
        hub.isReachable = false
        clock.advance(3600)
        let stale = try await pull("1")
        #expect(stale.cache == .stale)
        #expect(stale.manifest.digest == image.digest)
        await #expect {
            _ = try await pull("2")
        } throws: { ($0 as? RegistryError)?.code == .unavailable }
    }

    @Test func offlineNeverCallsTheUpstream() async throws {
        let store = try temporaryStoreForProxy()
        let catalog = try SQLiteCatalog.inMemory()
        let online = try Self.registry(hub, clock: clock, offline: false, store: store, catalog: catalog)
        let image = InMemoryImages.image(hub, repository: "library/app", tag: "1", platform: amd64)
        _ = try await online.manifest(try RepositoryName("library/app"), .tag(try Tag("1")), namespace: nil, accepting: [])
        let calls = hub.calls
        let offline = try Self.registry(hub, clock: clock, offline: true, store: store, catalog: catalog)
        clock.advance(3600)
        let answer = try await offline.manifest(try RepositoryName("library/app"), .tag(try Tag("1")), namespace: nil, accepting: [])
        #expect(answer.manifest.digest == image.digest)
        #expect(answer.cache == .hit)
        await #expect {
            _ = try await offline.blob(try RepositoryName("library/app"), Digest.sha256(Data("x".utf8)), namespace: nil, rangeHeader: nil)
        } throws: { ($0 as? RegistryError)?.code == .unavailable }
        #expect(hub.calls == calls)
    }

    @Test func aBlobCachedFromOneRepositoryIsServedToAnotherOnceItsUpstreamConfirms() async throws {
        let data = Data((0..<5000).map { UInt8($0 % 256) })
        let digest = hub.addBlob(data)
        let first = try await registry.blob(try RepositoryName("library/app"), digest, namespace: nil, rangeHeader: nil)
        #expect(first.cache == .miss)
        #expect(try await first.body.collect(upTo: 1 << 20).readableBytes == 5000)
        _ = try await waitForStored(digest)
        let other = try await registry.blob(try RepositoryName("someone/else"), digest, namespace: nil, rangeHeader: "bytes=-100")
        #expect(other.cache == .hit)
        #expect(other.range?.lowerBound == 4900)
        #expect(Data(try await other.body.collect(upTo: 1 << 20).readableBytesView) == data.suffix(100))
        // Bytes are shared, access is not: the other repository's upstream confirmed it has the
        // blob (a HEAD, once) before the stored copy was served under its name.
        #expect(hub.calls == ["blob library/app \(digest)", "headblob someone/else \(digest)"])
        _ = try await registry.blob(try RepositoryName("someone/else"), digest, namespace: nil, rangeHeader: nil)
        #expect(hub.calls.count == 2, "a confirmed name is remembered")
        await #expect(throws: RangeNotSatisfiable.self) {
            _ = try await registry.blob(try RepositoryName("library/app"), digest, namespace: nil, rangeHeader: "bytes=9999-")
        }
    }

    @Test func countersMoveWithHitsAndMisses() async throws {
        let metrics = TestMetrics()
        try await withMetricsFactory(metrics) {
            let registry = try Self.registry(hub, clock: clock, offline: false)
            InMemoryImages.image(hub, repository: "library/app", tag: "1", platform: amd64)
            for _ in 0..<3 {
                _ = try await registry.manifest(try RepositoryName("library/app"), .tag(try Tag("1")), namespace: nil, accepting: [])
            }
        }
        let hits = try metrics.expectCounter("archway_cache_requests_total", [("kind", "manifest"), ("result", "hit")])
        let misses = try metrics.expectCounter("archway_cache_requests_total", [("kind", "manifest"), ("result", "miss")])
        #expect(hits.totalValue == 2)
        #expect(misses.totalValue == 1)
    }

    /// A blob linked to a name with two sources, fetched from the second because the first does
    /// not have it: the second is where it is known to be, not the first.
    @Test func aBlobFilledFromItsSecondSourceRecordsThatSource() async throws {
        let first = InMemoryUpstream(name: "first.test")
        let second = InMemoryUpstream(name: "second.test")
        let digest = second.addBlob(Data("only the second has it".utf8))
        let catalog = try SQLiteCatalog.inMemory()
        let registry = PullThroughRegistry(
            router: try UpstreamRouter([.init(upstream: first), .init(upstream: second)], defaultUpstream: "first.test"),
            store: try temporaryStoreForProxy(),
            catalog: catalog,
            logger: Logger(label: "test")
        )
        let name = RepositoryKey(upstream: "first.test", repository: try RepositoryName("team/app"))
        let firstSource = RepositoryKey(upstream: "first.test", repository: try RepositoryName("team/base"))
        let secondSource = RepositoryKey(upstream: "second.test", repository: try RepositoryName("team/base"))
        try await catalog.link([digest], under: name, source: firstSource)
        try await catalog.link([digest], under: name, source: secondSource)
        let answer = try await registry.blob(try RepositoryName("team/app"), digest, namespace: nil, rangeHeader: nil)
        var bytes = 0
        for try await chunk in answer.body { bytes += chunk.readableBytes }
        #expect(bytes == "only the second has it".utf8.count)
        var sources: [LinkedSource] = []
        for _ in 0..<200 {
            sources = try await catalog.sources(digest, under: name)
            if sources.contains(where: \.isConfirmed) { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(
            sources == [
                LinkedSource(origin: firstSource, isConfirmed: false), LinkedSource(origin: secondSource, isConfirmed: true),
            ], "\(sources)")
    }

    private func waitForStored(_ digest: Digest) async throws -> Bool {
        for _ in 0..<200 {
            if (try? await registry.blob(try RepositoryName("library/app"), digest, namespace: nil, rangeHeader: "bytes=0-0"))?.cache
                == .hit
            {
                return true
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    private func temporaryStoreForProxy() throws -> LocalBlobStore {
        try LocalBlobStore(
            layout: StorageLayout(
                root: FileManager.default.temporaryDirectory.appendingPathComponent("archway-proxy-\(UInt64.random(in: 0...UInt64.max))")))
    }
}
