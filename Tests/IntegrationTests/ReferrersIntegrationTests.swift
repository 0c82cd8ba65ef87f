import ArchwayTesting
import Foundation
import Testing

/// Referrers through the real binary from a real docker-registry, which has no referrers API: an
/// artifact pushed with the tag schema (as oras and cosign do for such registries) is listed,
/// filtered by artifactType, and served again with the upstream stopped.
@Suite(.serialized) struct ReferrersIntegrationTests {
    static let sbom = "application/vnd.example.sbom.v1+json"
    static let index = "application/vnd.oci.image.index.v1+json"

    @Test func anArtifactPushedWithTheTagSchemaIsListedFilteredAndKept() async throws {
        try await withUpstreamRegistry { upstream in
            let uploader = RegistryUploader(upstream)
            let subject = try await ImageBuilder.pushImage(
                to: uploader, repository: "test/app", tag: "1.0", platform: .linuxAMD64, format: .oci)
            // An SBOM artifact: an OCI manifest with an artifactType and the image as its subject.
            let empty = try await uploader.pushBlob(repository: "test/app", data: Data("{}".utf8))
            let sbomBlob = try await uploader.pushBlob(repository: "test/app", data: Data(#"{"packages":[]}"#.utf8))
            let artifact = Data(
                """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"\(Self.sbom)",\
                "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(empty.digest)","size":2},\
                "layers":[{"mediaType":"application/json","digest":"\(sbomBlob.digest)","size":\(sbomBlob.size)}],\
                "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(subject.manifestDigest)",\
                "size":\(subject.manifestBytes.count)}}
                """.utf8)
            let artifactDigest = sha256Digest(artifact)
            try await uploader.pushManifest(
                repository: "test/app", reference: artifactDigest, bytes: artifact, mediaType: "application/vnd.oci.image.manifest.v1+json")
            let schema = Data(
                """
                {"schemaVersion":2,"mediaType":"\(Self.index)","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",\
                "digest":"\(artifactDigest)","size":\(artifact.count),"artifactType":"\(Self.sbom)"}]}
                """.utf8)
            let hex = subject.manifestDigest.dropFirst("sha256:".count)
            try await uploader.pushManifest(repository: "test/app", reference: "sha256-\(hex)", bytes: schema, mediaType: Self.index)

            try await withArchwayProcess(
                configuration: "upstreams:\n  - name: registry.test\n    url: \(upstream.url)\ndefault-upstream: registry.test\n"
            ) { archway in
                let url = "\(archway.url)/v2/registry.test/test/app/referrers/\(subject.manifestDigest)"
                func listed(_ query: String = "") async throws -> (digests: [String], filtered: String?, type: String?, status: Int) {
                    let answer = try await httpRequest("GET", url + query)
                    let json = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
                    let manifests = json?["manifests"] as? [[String: Any]] ?? []
                    return (
                        manifests.compactMap { $0["digest"] as? String }, answer.header("oci-filters-applied"),
                        answer.header("content-type"),
                        answer.status
                    )
                }
                let all = try await listed()
                #expect(all.status == 200 && all.type == Self.index && all.digests == [artifactDigest] && all.filtered == nil, "\(all)")
                let sboms = try await listed("?artifactType=\(Self.sbom)")
                #expect(sboms.digests == [artifactDigest] && sboms.filtered == "artifactType", "\(sboms)")
                let signatures = try await listed("?artifactType=application/vnd.example.signature")
                #expect(signatures.status == 200 && signatures.digests.isEmpty && signatures.filtered == "artifactType")
                // The artifact itself comes through by digest, as clients fetch it next.
                let fetched = try await httpRequest(
                    "GET", "\(archway.url)/v2/registry.test/test/app/manifests/\(artifactDigest)",
                    headers: ["Accept": "application/vnd.oci.image.manifest.v1+json"])
                #expect(fetched.status == 200 && fetched.body == artifact)
                // A subject nobody refers to: an empty list, not an error.
                let lonely = try await httpRequest(
                    "GET", "\(archway.url)/v2/registry.test/test/app/referrers/sha256:\(String(repeating: "0", count: 64))")
                #expect(lonely.status == 200 && lonely.bodyText.contains(#""manifests":[]"#), "\(lonely.bodyText)")

                await upstream.stop()
                let kept = try await listed("?artifactType=\(Self.sbom)")
                #expect(kept.status == 200 && kept.digests == [artifactDigest], "served again with the upstream stopped: \(kept)")
            }
        }
    }
}
