import ArchwayTesting
import Foundation
import Testing

/// Digest sharing never crosses an access boundary: content is served under a name only when
/// that name's upstream is known to have it. Two real docker-registry upstreams, one private.
@Suite(.serialized) struct AccessBoundaryTests {
    static let oci = "Accept: application/vnd.oci.image.manifest.v1+json"

    @Test func privateContentNeverReachesAnonymousClientsUnderAPublicName() async throws {
        try await withUpstreamRegistry { publicRegistry in
            let images = try await StandardImages.seed(publicRegistry)
            try await withUpstreamRegistry { privateRegistry in
                let uploader = RegistryUploader(baseURL: privateRegistry.url)
                let secret = try await ImageBuilder.pushImage(
                    to: uploader, repository: "team/secret", tag: "1", platform: .linuxAMD64, format: .oci,
                    layerPayload: "team/secret:1 only for robots")
                let unpulled = try await ImageBuilder.pushImage(
                    to: uploader, repository: "team/secret", tag: "2", platform: .linuxAMD64, format: .oci,
                    layerPayload: "team/secret:2 never pulled by anyone")
                try await withTemporaryDirectory { directory in
                    let configuration = try Robots.configuration(public: publicRegistry.url, private: privateRegistry.url, in: directory)
                    try await withArchwayProcess(configuration: configuration) { archway in
                        let base = archway.url
                        // A robot pulls the private image: its manifest, config and layer are cached.
                        let robot = ["-u", "robot:s3cret", "-H", Self.oci]
                        let pulled = try await HTTPSurfaceTests.curl(robot + ["\(base)/v2/private.test/team/secret/manifests/1"])
                        #expect(pulled.status == 200)
                        for digest in [secret.configDigest] + secret.layerDigests {
                            let blob = try await HTTPSurfaceTests.curl(robot + ["\(base)/v2/private.test/team/secret/blobs/\(digest)"])
                            #expect(blob.status == 200)
                        }

                        // Anonymous clients ask for the same digests under public names: refused,
                        // whether the name is a prefix, a namespace or the default upstream.
                        let layer = secret.layerDigests[0]
                        let publicNames = [
                            "\(base)/v2/public.test/test/multi/blobs/\(layer)",
                            "\(base)/v2/test/multi/blobs/\(layer)",
                            "\(base)/v2/test/multi/blobs/\(layer)?ns=public.test",
                            "\(base)/v2/public.test/test/multi/blobs/\(secret.configDigest)",
                        ]
                        for url in publicNames {
                            let stolen = try await HTTPSurfaceTests.curl([url])
                            #expect(stolen.status == 404, "\(url)")
                            #expect(stolen.body.contains("BLOB_UNKNOWN"), "\(url): \(stolen.body)")
                        }
                        let manifest = try await HTTPSurfaceTests.curl(
                            ["-H", Self.oci, "\(base)/v2/public.test/test/multi/manifests/\(secret.manifestDigest)"])
                        #expect(manifest.status == 404)
                        #expect(manifest.body.contains("MANIFEST_UNKNOWN"))

                        // A miss under a public name is fetched from the public upstream only.
                        let privateMark = privateRegistry.accessLogMark()
                        let miss = try await HTTPSurfaceTests.curl(["\(base)/v2/public.test/test/multi/blobs/\(unpulled.layerDigests[0])"])
                        #expect(miss.status == 404)
                        #expect(
                            privateRegistry.accessLog(since: privateMark).isEmpty, "the private upstream was asked for an anonymous client")

                        // Within one upstream, a repository gets only what that repository has.
                        let multiLayer = images.multiAMD64.layerDigests[0]
                        let fetched = try await HTTPSurfaceTests.curl(["\(base)/v2/public.test/test/multi/blobs/\(multiLayer)"])
                        #expect(fetched.status == 200)
                        let crossed = try await HTTPSurfaceTests.curl(["\(base)/v2/public.test/test/docker/blobs/\(multiLayer)"])
                        #expect(crossed.status == 404)

                        // Shared bytes stay shared where the upstream confirms: the robot's layer under
                        // another private repository that has it is served, from the cache.
                        let confirmedMark = privateRegistry.accessLogMark()
                        let again = try await HTTPSurfaceTests.curl(robot + ["\(base)/v2/private.test/team/secret/blobs/\(layer)"])
                        #expect(again.status == 200)
                        #expect(privateRegistry.requestCount(method: "GET", pathSuffix: layer, since: confirmedMark) == 0)
                    }
                }
            }
        }
    }
}
