import ArchwayTesting
import Cache
import Foundation
import Logging
import OCI
import Testing

@testable import Proxy

/// Referrers (OCI distribution 1.1): the upstream's API passed through, its tag schema read when
/// it has no API, both cached and filtered by artifactType.
@Suite struct ReferrersTests {
    let hub = InMemoryUpstream(name: "docker.io")
    static let sbom = "application/vnd.example.sbom.v1+json"
    static let signature = "application/vnd.example.signature.v1+json"

    func registry(offline: Bool = false, root: URL) throws -> PullThroughRegistry {
        PullThroughRegistry(
            router: try UpstreamRouter([.init(upstream: hub)], defaultUpstream: "docker.io"),
            store: try LocalBlobStore(layout: StorageLayout(root: root)),
            catalog: try SQLiteCatalog(path: root.appendingPathComponent("c.sqlite").path),
            offline: offline, logger: Logger(label: "test"))
    }

    func route(_ registry: PullThroughRegistry) throws -> UpstreamRouter.Route {
        try registry.resolve(try RepositoryName("app"), namespace: nil)
    }

    static func descriptor(_ text: String, artifactType: String) -> Descriptor {
        var descriptor = Descriptor(mediaType: .ociManifest, digest: Digest.sha256(Data(text.utf8)), size: Int64(text.utf8.count))
        descriptor.artifactType = artifactType
        return descriptor
    }

    @Test func theUpstreamsAPIIsPassedThroughFilteredAndKeptForWhenItIsDown() async throws {
        let subject = Digest.sha256(Data("subject".utf8))
        let (sbom, signature) = (Self.descriptor("sbom", artifactType: Self.sbom), Self.descriptor("sig", artifactType: Self.signature))
        hub.addReferrers(of: subject, [sbom, signature])
        try await withTemporaryDirectory { root in
            let registry = try registry(root: root)
            let all = try await registry.referrers(try route(registry), subject: subject, artifactType: nil)
            #expect(all.index.manifests == [sbom, signature] && !all.filtered && all.cache == .miss)
            #expect(all.index.mediaType == .ociIndex)
            let sboms = try await registry.referrers(try route(registry), subject: subject, artifactType: Self.sbom)
            #expect(sboms.index.manifests == [sbom] && sboms.filtered && sboms.cache == .hit)
            #expect(hub.calls.filter { $0.hasPrefix("referrers") }.count == 1, "cached for the tag TTL")
            // None for another subject: an empty index, not an error, and not kept (a client
            // asking about made-up digests does not grow the catalog).
            let nobody = Digest.sha256(Data("x".utf8))
            for _ in 0..<2 {
                let none = try await registry.referrers(try route(registry), subject: nobody, artifactType: nil)
                #expect(none.index.manifests.isEmpty)
            }
            #expect(hub.calls.filter { $0 == "referrers library/app \(nobody)" }.count == 2)
            let key = TagKey(
                upstream: "docker.io", repository: "library/app", tag: "referrers/\(nobody)",
                accepting: ["application/vnd.oci.image.index.v1+json"])
            #expect(try await registry.catalog.tag(key) == nil)

            hub.isReachable = false
            let offline = try self.registry(offline: true, root: root)
            #expect(
                try await offline.referrers(try route(offline), subject: subject, artifactType: Self.signature).index.manifests == [
                    signature
                ])
        }
    }

    @Test func withoutTheAPITheTagSchemaIsRead() async throws {
        let subject = Digest.sha256(Data("subject".utf8))
        let sbom = Self.descriptor("sbom", artifactType: Self.sbom)
        let schema = ImageIndex(mediaType: .ociIndex, manifests: [sbom])
        hub.addManifest("library/app", tag: "sha256-\(subject.encoded)", Manifest(bytes: schema.canonicalJSON(), mediaType: .ociIndex))
        try await withTemporaryDirectory { root in
            let registry = try registry(root: root)
            let answer = try await registry.referrers(try route(registry), subject: subject, artifactType: Self.sbom)
            #expect(answer.index.manifests == [sbom] && answer.filtered)
            #expect(
                hub.calls.contains("referrers library/app \(subject)")
                    && hub.calls.contains("manifest library/app sha256-\(subject.encoded)"))
            #expect(
                try await registry.referrers(try route(registry), subject: subject, artifactType: Self.signature).index.manifests.isEmpty)
        }
    }
}
