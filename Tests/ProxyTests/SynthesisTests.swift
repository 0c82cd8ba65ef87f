import ArchwayTesting
import Cache
import Foundation
import Logging
import NIOCore
import OCI
import Policies
import Proxy
import RegistryClient
import Testing

/// The rewriter against in-memory upstreams.
@Suite struct SynthesisTests {
    static let amd64 = Platform(os: "linux", architecture: "amd64")
    static let arm64 = Platform(os: "linux", architecture: "arm64", variant: "v8")
    static let arm = Platform(os: "linux", architecture: "arm", variant: "v7")
    static let index = [
        MediaType.ociIndex.rawValue, MediaType.dockerManifestList.rawValue, MediaType.ociManifest.rawValue,
        MediaType.dockerManifest.rawValue,
    ]

    let hub = InMemoryUpstream(name: "docker.io")
    let quay = InMemoryUpstream(name: "quay.io")
    let clock = TestClock()

    static func rules(_ yaml: String) throws -> PolicySet {
        PolicySet(rules: try PolicyLoader(upstreams: ["docker.io", "quay.io"]).parse(yaml, file: "test.yaml"))
    }

    static let perTag = """
        rules:
          - name: app
            repository: docker.io/library/app
            members:
              - from: "{repository}:amd64-{tag}"
              - from: "{repository}:arm64-{tag}"
                platform: linux/arm64
              - from: "quay.io/other/app:{tag}-arm"
        """

    func registry(_ policies: PolicySet, offline: Bool = false, privateQuay: Bool = false) throws -> PullThroughRegistry {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-synthesis-\(UInt64.random(in: 0...UInt64.max))")
        return PullThroughRegistry(
            router: try UpstreamRouter(
                [.init(upstream: hub), .init(upstream: quay, isPrivate: privateQuay)], defaultUpstream: "docker.io"),
            policies: policies,
            store: try LocalBlobStore(layout: StorageLayout(root: root)),
            catalog: try SQLiteCatalog.inMemory(),
            tagTTL: .seconds(60),
            offline: offline,
            now: { clock.now },
            logger: Logger(label: "test")
        )
    }

    func seedPerTag(format: MediaType = .ociManifest) -> (Manifest, Manifest, Manifest) {
        (
            InMemoryImages.image(hub, repository: "library/app", tag: "amd64-1.0", platform: Self.amd64, mediaType: format),
            InMemoryImages.image(hub, repository: "library/app", tag: "arm64-1.0", platform: Self.arm64, mediaType: format),
            InMemoryImages.image(quay, repository: "other/app", tag: "1.0-arm", platform: Self.arm, mediaType: format)
        )
    }

    func pull(_ registry: PullThroughRegistry, _ tag: String, accepting: [String] = Self.index, platform: Platform? = nil) async throws
        -> ManifestAnswer
    {
        try await registry.manifest(
            try RepositoryName("app"), .tag(try Tag(tag)), namespace: nil, accepting: accepting,
            client: Client(platformHeader: platform?.description)
        )
    }

    @Test func perArchitectureTagsBecomeOneDeterministicIndex() async throws {
        let (amd, arm, armv7) = seedPerTag()
        let policies = try Self.rules(Self.perTag)
        let answer = try await pull(try registry(policies), "1.0")
        #expect(answer.manifest.mediaType == .ociIndex)
        guard case .index(let index) = try answer.manifest.decoded() else { throw RegistryError(.manifestInvalid, "not an index") }
        #expect(index.manifests.map(\.digest) == [amd.digest, armv7.digest, arm.digest], "sorted by os, architecture, variant")
        #expect(index.manifests.map { $0.platform?.description } == ["linux/amd64", "linux/arm/v7", "linux/arm64"])
        // No whitespace, no timestamps: another instance with its own empty cache agrees.
        #expect(!String(decoding: answer.manifest.bytes, as: UTF8.self).contains(" "))
        let other = try await pull(try registry(policies), "1.0")
        #expect(other.manifest.digest == answer.manifest.digest)
        #expect(other.manifest.bytes == answer.manifest.bytes)
    }

    @Test func aPrivateUpstreamsMemberIsNeverPublishedUnderAPublicName() async throws {
        let (amd, arm, armv7) = seedPerTag()
        let answer = try await pull(try registry(try Self.rules(Self.perTag), privateQuay: true), "1.0")
        guard case .index(let index) = try answer.manifest.decoded() else { throw RegistryError(.manifestInvalid, "not an index") }
        #expect(index.manifests.map(\.digest) == [amd.digest, arm.digest], "quay.io is private: its arm/v7 member is left out")
        #expect(!index.manifests.contains { $0.digest == armv7.digest })
        #expect(!quay.calls.contains { $0.hasPrefix("manifest") }, "the private upstream was not even asked")
    }

    @Test func dockerMembersGiveADockerManifestList() async throws {
        _ = seedPerTag(format: .dockerManifest)
        let answer = try await pull(try registry(try Self.rules(Self.perTag)), "1.0")
        #expect(answer.manifest.mediaType == .dockerManifestList)
    }

    @Test func aContradictedPlatformIsExcludedAndTheRequestedTagKeepsItsOwn() async throws {
        let (amd, _, _) = seedPerTag()
        // arm64-1.0 is really amd64 here: its declared platform is contradicted.
        InMemoryImages.image(hub, repository: "library/app", tag: "arm64-1.0", platform: Self.amd64, layer: Data("liar".utf8))
        // The tag itself exists, as an s390x image: it is kept.
        let own = InMemoryImages.image(hub, repository: "library/app", tag: "1.0", platform: Platform(os: "linux", architecture: "s390x"))
        let registry = try registry(try Self.rules(Self.perTag))
        let route = try #require(registry.router.route(upstream: "docker.io", repository: try RepositoryName("library/app")))
        let rule = try #require(registry.policies.rules.first)
        let report = try await registry.synthesize(route, tag: try Tag("1.0"), rule: rule)
        #expect(report.children.map(\.platform.description) == ["linux/amd64", "linux/arm/v7", "linux/s390x"])
        #expect(report.children.map(\.descriptor.digest).contains(own.digest))
        #expect(report.children.map(\.descriptor.digest).contains(amd.digest))
        #expect(report.warnings.contains { $0.contains("declared platform linux/arm64, but its config says linux/amd64") })
    }

    @Test func missingMembersAreSkippedAndNothingAtAllIsUnknown() async throws {
        InMemoryImages.image(hub, repository: "library/app", tag: "amd64-2.0", platform: Self.amd64)
        let registry = try registry(try Self.rules(Self.perTag))
        guard case .index(let index) = try await pull(registry, "2.0").manifest.decoded() else { throw CancellationError() }
        #expect(index.manifests.count == 1)
        await #expect {
            _ = try await pull(registry, "9.9")
        } throws: { ($0 as? RegistryError)?.code == .manifestUnknown }
    }

    @Test func childrenFromOtherRepositoriesAndUpstreamsAreServedUnderTheRequestedName() async throws {
        let (_, _, armv7) = seedPerTag()
        let registry = try registry(try Self.rules(Self.perTag))
        _ = try await pull(registry, "1.0")
        let child = try await registry.manifest(try RepositoryName("app"), .digest(armv7.digest), namespace: nil, accepting: Self.index)
        #expect(child.manifest.digest == armv7.digest)
        guard case .image(let image) = try child.manifest.decoded() else { throw CancellationError() }
        let layer = try await registry.blob(try RepositoryName("app"), image.layers[0].digest, namespace: nil, rangeHeader: nil)
        #expect(try await layer.body.collect(upTo: 1 << 20).readableBytes > 0)
        #expect(quay.calls.contains("manifest other/app \(armv7.digest)") || quay.calls.contains("manifest other/app 1.0-arm"))
        #expect(quay.calls.contains("blob other/app \(image.layers[0].digest)"))
    }

    @Test func clientsWithoutIndexSupportGetTheirPlatformsChild() async throws {
        let (_, arm, _) = seedPerTag()
        let registry = try registry(try Self.rules(Self.perTag))
        let child = try await pull(registry, "1.0", accepting: [MediaType.ociManifest.rawValue], platform: Self.arm64)
        #expect(child.manifest.digest == arm.digest)
        await #expect {
            _ = try await pull(registry, "1.0", accepting: [MediaType.ociManifest.rawValue])
        } throws: { error in
            (error as? RegistryError)?.message.contains("linux/amd64, linux/arm/v7, linux/arm64") == true
        }
    }

    @Test func theLastIndexIsServedWhenTheUpstreamIsGoneAndByDigestFromTheStore() async throws {
        _ = seedPerTag()
        let registry = try registry(try Self.rules(Self.perTag))
        let first = try await pull(registry, "1.0")
        #expect(first.cache == .miss)
        clock.advance(30)
        #expect(try await pull(registry, "1.0").cache == .hit)
        clock.advance(60)
        let revalidated = try await pull(registry, "1.0")
        #expect(revalidated.manifest.digest == first.manifest.digest, "unchanged members, same digest")
        hub.isReachable = false
        quay.isReachable = false
        clock.advance(600)
        let stale = try await pull(registry, "1.0")
        #expect(stale.cache == .stale)
        #expect(stale.manifest.digest == first.manifest.digest)
        let byDigest = try await registry.manifest(
            try RepositoryName("app"), .digest(first.manifest.digest), namespace: nil, accepting: Self.index)
        #expect(byDigest.manifest.bytes == first.manifest.bytes)
    }

    @Test func tagListsIncludeWhatTheRulesCanSynthesize() async throws {
        _ = seedPerTag()
        InMemoryImages.image(hub, repository: "library/app", tag: "arm64-2.0", platform: Self.arm64)
        let registry = try registry(try Self.rules(Self.perTag))
        let page = try await registry.tags(try RepositoryName("app"), namespace: nil, count: nil, last: nil)
        #expect(page.tags == ["1.0", "2.0", "amd64-1.0", "arm64-1.0", "arm64-2.0"])
    }
}
