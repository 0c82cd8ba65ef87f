import ArchwayTesting
import Cache
import CoreMetrics
import Foundation
import Logging
import MetricsTestKit
import OCI
import Policies
import Testing

@testable import Proxy

@Suite struct ClientPlatformTests {
    @Test(
        arguments: [
            (nil, "cri-o/1.28.1 go/go1.21 os/linux arch/arm64", "linux/arm64"),
            (
                nil,
                "docker/20.10.24+dfsg1 go/go1.19.8 git-commit/5d6db84 kernel/6.18.44 os/linux arch/amd64 UpstreamClient(Docker-Client/20.10.24)",
                "linux/amd64"
            ),
            ("linux/arm64/v8", "containerd/1.6.20", "linux/arm64"),
            ("linux/arm/v7", nil, "linux/arm/v7"),
            ("garbage!!", "cri-o/1 os/linux arch/aarch64", "linux/arm64"),
            (nil, "containerd/1.6.20~ds1", nil),
            (nil, "skopeo/1.9.3", nil),
            (nil, "os/linux arch/", nil),
        ] as [(String?, String?, String?)])
    func detection(header: String?, userAgent: String?, expected: String?) {
        #expect(ClientPlatform.detect(header: header, userAgent: userAgent)?.description == expected)
    }
}

@Suite struct AuditTests {
    static let amd64 = Platform(os: "linux", architecture: "amd64")
    static let arm64 = Platform(os: "linux", architecture: "arm64")
    static let crio = "cri-o/1.28.1 go/go1.21 os/linux arch/arm64"
    let hub = InMemoryUpstream(name: "docker.io")
    let catalog: any Catalog
    let clock = TestClock()

    init() throws {
        catalog = try SQLiteCatalog.inMemory()
    }

    func registry(_ policies: PolicySet = .empty, mismatch: MismatchAction = .warn) throws -> PullThroughRegistry {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-audit-\(UInt64.random(in: 0...UInt64.max))")
        return PullThroughRegistry(
            router: try UpstreamRouter([.init(upstream: hub)], defaultUpstream: "docker.io"),
            policies: policies,
            store: try LocalBlobStore(layout: StorageLayout(root: root)),
            catalog: catalog,
            mismatch: mismatch,
            now: { clock.now },
            logger: Logger(label: "test")
        )
    }

    func pull(_ registry: PullThroughRegistry, _ reference: ManifestReference, _ client: Client) async throws -> ManifestAnswer {
        try await registry.manifest(try RepositoryName("app"), reference, namespace: nil, accepting: [], client: client)
    }

    @Test func aSingleArchitectureTagOfAnotherPlatformIsRecordedAndCounted() async throws {
        InMemoryImages.image(hub, repository: "library/app", tag: "1.0", platform: Self.amd64)
        let metrics = TestMetrics()
        try await withMetricsFactory(metrics) {
            let registry = try registry()
            let client = Client(address: "10.1.2.3", userAgent: Self.crio)
            let first = try await pull(registry, .tag(try Tag("1.0")), client)
            #expect(first.warning?.contains("docker.io/library/app:1.0 has no image for linux/arm64 (it has linux/amd64)") == true)
            _ = try await pull(registry, .tag(try Tag("1.0")), client)
            // An amd64 client and a client that says nothing record nothing.
            _ = try await pull(registry, .tag(try Tag("1.0")), Client(address: "10.1.2.4", userAgent: "cri-o/1 os/linux arch/amd64"))
            _ = try await pull(registry, .tag(try Tag("1.0")), Client(address: "10.1.2.5", userAgent: "containerd/1.6.20"))
        }
        let rows = try await catalog.mismatches(since: nil)
        #expect(rows.count == 1)
        #expect(rows.first?.count == 2)
        #expect(rows.first?.repository == "docker.io/library/app")
        #expect(rows.first?.clientPlatform == "linux/arm64")
        #expect(rows.first?.imagePlatforms == "linux/amd64")
        #expect(rows.first?.kind == "single-platform")
        #expect(rows.first?.lastClient == "10.1.2.3")
        let counter = try metrics.expectCounter("archway_arch_mismatch_total", [("client_arch", "arm64"), ("kind", "single-platform")])
        #expect(counter.totalValue == 2)
    }

    @Test func thePlatformHeaderAndALearnedPlatformCount() async throws {
        let amd = InMemoryImages.image(hub, repository: "library/app", tag: "amd64", platform: Self.amd64)
        let arm = InMemoryImages.image(hub, repository: "library/app", tag: "arm64", platform: Self.arm64)
        InMemoryImages.index(hub, repository: "library/app", tag: "multi", children: [(amd, Self.amd64), (arm, Self.arm64)])
        let registry = try registry()
        _ = try await pull(registry, .tag(try Tag("amd64")), Client(address: "10.0.0.1", platformHeader: "linux/arm64"))
        // skopeo says nothing about itself, but it fetched the arm64 child of an index it was served.
        let skopeo = Client(address: "10.0.0.2", userAgent: "skopeo/1.9.3")
        _ = try await pull(registry, .tag(try Tag("multi")), skopeo)
        _ = try await pull(registry, .digest(arm.digest), skopeo)
        #expect(registry.auditor.platform(of: skopeo)?.source == .learned)
        _ = try await pull(registry, .tag(try Tag("amd64")), skopeo)
        // A client that says it is arm64 but fetches the amd64 child.
        let stated = Client(address: "10.0.0.3", platformHeader: "linux/arm64")
        _ = try await pull(registry, .tag(try Tag("multi")), stated)
        _ = try await pull(registry, .digest(amd.digest), stated)
        let rows = try await catalog.mismatches(since: nil)
        #expect(rows.map(\.kind).sorted() == ["child-of-other-platform", "single-platform"])
        #expect(rows.first { $0.kind == "single-platform" }?.count == 2, "header and learned clients, same platform")
        // The learned platform is forgotten after an hour.
        clock.advance(3601)
        #expect(registry.auditor.platform(of: skopeo) == nil)
    }

    @Test func aCopierThatFetchesChildrenOfSeveralPlatformsIsLearnedAsNone() async throws {
        let amd = InMemoryImages.image(hub, repository: "library/app", tag: "amd64", platform: Self.amd64)
        let arm = InMemoryImages.image(hub, repository: "library/app", tag: "arm64", platform: Self.arm64)
        InMemoryImages.index(hub, repository: "library/app", tag: "multi", children: [(amd, Self.amd64), (arm, Self.arm64)])
        let registry = try registry()
        // skopeo copy --all: the index, then every child.
        let copier = Client(address: "10.0.0.9", userAgent: "skopeo/1.9.3")
        _ = try await pull(registry, .tag(try Tag("multi")), copier)
        _ = try await pull(registry, .digest(amd.digest), copier)
        #expect(registry.auditor.platform(of: copier)?.platform == Self.amd64, "one child so far: a node, for now")
        _ = try await pull(registry, .digest(arm.digest), copier)
        #expect(registry.auditor.platform(of: copier) == nil, "children of two platforms: a copier")
        // Its later pulls of single-platform tags draw no warning and no event.
        #expect(try await pull(registry, .tag(try Tag("amd64")), copier).warning == nil)
        #expect(try await pull(registry, .tag(try Tag("arm64")), copier).warning == nil)
        // Fetching the same child again does not make it a node again within the hour.
        _ = try await pull(registry, .digest(arm.digest), copier)
        #expect(registry.auditor.platform(of: copier) == nil)
        #expect(try await catalog.mismatches(since: nil).isEmpty)
        // An hour later it is judged afresh.
        clock.advance(3601)
        _ = try await pull(registry, .tag(try Tag("multi")), copier)
        _ = try await pull(registry, .digest(arm.digest), copier)
        #expect(registry.auditor.platform(of: copier)?.platform == Self.arm64)
    }

    @Test func refusalFailsAStatedPlatformAtPullTimeAndNobodyElse() async throws {
        let amd = InMemoryImages.image(hub, repository: "library/app", tag: "amd64-1.0", platform: Self.amd64)
        let arm = InMemoryImages.image(hub, repository: "library/app", tag: "arm64-1.0", platform: Self.arm64)
        InMemoryImages.index(hub, repository: "library/app", tag: "multi", children: [(amd, Self.amd64), (arm, Self.arm64)])
        let refusing = try registry(mismatch: .refuse)
        // CRI-O says arm64 in its User-Agent, the header says arm64: both refused, with why.
        for client in [Client(address: "10.0.0.1", userAgent: Self.crio), Client(address: "10.0.0.2", platformHeader: "linux/arm64")] {
            let refused = await #expect(throws: RegistryError.self) { _ = try await pull(refusing, .tag(try Tag("amd64-1.0")), client) }
            #expect(refused?.code == .manifestUnknown)
            #expect(
                refused?.message.contains("docker.io/library/app:amd64-1.0 has no image for linux/arm64 (it has linux/amd64)") == true,
                "\(String(describing: refused))")
            #expect(refused?.message.contains("archway mismatches") == true)
        }
        #expect(try await catalog.mismatches(since: nil).first?.count == 2, "the refusals are events too")
        // A client that states nothing, and one whose platform was only learned, get the image.
        #expect(
            try await pull(refusing, .tag(try Tag("amd64-1.0")), Client(address: "10.0.0.3", userAgent: "containerd/1.6.20")).warning == nil
        )
        let learned = Client(address: "10.0.0.4", userAgent: "skopeo/1.9.3")
        _ = try await pull(refusing, .tag(try Tag("multi")), learned)
        _ = try await pull(refusing, .digest(arm.digest), learned)
        #expect(try await pull(refusing, .tag(try Tag("amd64-1.0")), learned).warning != nil, "warned, never refused on a guess")
        // The default warns, as before.
        #expect(
            try await pull(try registry(), .tag(try Tag("amd64-1.0")), Client(address: "10.0.0.1", userAgent: Self.crio)).warning != nil)

        // A rule may refuse on its own, naming itself; the configuration's warn holds elsewhere.
        let rules = try PolicyLoader(upstreams: ["docker.io"]).parse(
            """
            rules:
              - name: amd-only
                repository: docker.io/library/app
                tags: ["1.0"]
                mismatch: refuse
                members:
                  - from: "{repository}:amd64-{tag}"
            """, file: "/etc/archway/policies/rules.yaml")
        let byRule = try registry(PolicySet(rules: rules))
        let refused = await #expect(throws: RegistryError.self) {
            _ = try await pull(byRule, .tag(try Tag("1.0")), Client(address: "10.0.0.1", userAgent: Self.crio))
        }
        #expect(
            refused?.message.contains("rule 'amd-only' (rules.yaml:2) has no member for linux/arm64") == true,
            "\(String(describing: refused))")
        #expect(refused?.message.contains("/etc/archway") == false, "no server folder in a client's answer")
        #expect(try await pull(byRule, .tag(try Tag("amd64-1.0")), Client(address: "10.0.0.1", userAgent: Self.crio)).warning != nil)
    }

    @Test func anIndexWithoutTheClientsPlatformIsRecordedASynthesizedOneThatCoversItIsNot() async throws {
        let amd = InMemoryImages.image(hub, repository: "library/app", tag: "amd64-1.0", platform: Self.amd64)
        InMemoryImages.index(hub, repository: "library/app", tag: "1.0", children: [(amd, Self.amd64)])
        let arm = InMemoryImages.image(hub, repository: "library/app", tag: "arm64-1.0", platform: Self.arm64)
        let client = Client(address: "10.0.0.9", userAgent: Self.crio)
        _ = try await pull(try registry(), .tag(try Tag("1.0")), client)
        #expect(try await catalog.mismatches(since: nil).map(\.kind) == ["index-lacks-platform"])

        let advisor = MismatchAdvisor(router: try registry().router, catalog: catalog, offline: false)
        let report = try await advisor.report(since: nil)
        let suggestion = try #require(report.first?.suggestion)
        #expect(suggestion.contains(#"from: "{repository}:arm64-{tag}""#), "\(suggestion)")
        // The suggestion is a rule the rewriter accepts, and it fixes the pull.
        let rules = try PolicyLoader(upstreams: ["docker.io"]).parse(suggestion, file: "suggested.yaml")
        let fixed = try registry(PolicySet(rules: rules))
        let answer = try await pull(fixed, .tag(try Tag("1.0")), client)
        guard case .index(let index) = try answer.manifest.decoded() else { throw CancellationError() }
        #expect(index.manifests.map(\.digest).contains(arm.digest))
        #expect(answer.warning == nil)
        #expect(try await catalog.mismatches(since: nil).first?.count == 1, "no new event")
    }

    @Test func perArchitectureRepositoriesOnDockerHubAreSuggested() async throws {
        InMemoryImages.image(hub, repository: "library/app", tag: "2.0", platform: Self.amd64)
        InMemoryImages.image(hub, repository: "arm64v8/app", tag: "2.0", platform: Self.arm64)
        _ = try await pull(try registry(), .tag(try Tag("2.0")), Client(address: "10.0.0.7", userAgent: Self.crio))
        let report = try await MismatchAdvisor(router: try registry().router, catalog: catalog, offline: false).report(since: nil)
        #expect(report.first?.suggestion?.contains(#"from: "docker.io/arm64v8/{name}:{tag}""#) == true)
        let json = String(decoding: try MismatchReport.json(report), as: UTF8.self)
        #expect(json.contains(#""client_platform":"linux/arm64""#))
        #expect(json.contains(#""image_platforms":["linux/amd64"]"#))
    }
}

@Suite struct PlatformAuditorBoundsTests {
    @Test func platformListsAreShortAndAddressesAreForgotten() throws {
        let platforms = (0..<40).map { Platform(os: "linux", architecture: "arch\($0)") }
        let summary = PlatformAuditor.summary(platforms + platforms)
        #expect(summary.hasPrefix("linux/arch0,linux/arch1,"))
        #expect(summary.hasSuffix(" and 24 more"))
        #expect(PlatformAuditor.summary(Array(platforms.prefix(2))) == "linux/arch0,linux/arch1")

        let auditor = PlatformAuditor(catalog: try SQLiteCatalog.inMemory(), logger: Logger(label: "test"))
        let index = ImageIndex(
            schemaVersion: 2, mediaType: .ociIndex,
            manifests: [
                Descriptor(
                    mediaType: .ociManifest, digest: Digest.sha256(Data("child".utf8)), size: 1,
                    platform: Platform(os: "linux", architecture: "amd64"))
            ])
        for address in 0..<(PlatformAuditor.addressesRemembered + 500) {
            auditor.servedIndex(index, to: Client(address: "10.\(address >> 16).\((address >> 8) & 255).\(address & 255)"))
        }
        #expect(auditor.rememberedAddresses <= PlatformAuditor.addressesRemembered)
    }
}
