import ArchwayTesting
import Foundation
import RegistryClient
import Testing

/// An upstream written to attack Archway, in front of the real binary: every answer is hostile
/// until checked, and none may cost unbounded CPU, reach an internal service or be cached as a
/// manifest when it is not one.
@Suite(.serialized) struct HostileUpstreamTests {
    static let accept: RegistryClient.UpstreamHeaders = [
        "Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
    ]

    func withHostileUpstream(_ body: (ArchwayProcess, HostileUpstream) async throws -> Void) async throws {
        let upstream = try await HostileUpstream.start()
        do {
            let configuration = """
                upstreams:
                  - name: evil.test
                    url: \(upstream.url)
                default-upstream: evil.test

                """
            try await withArchwayProcess(configuration: configuration) { archway in try await body(archway, upstream) }
            await upstream.stop()
        } catch {
            await upstream.stop()
            throw error
        }
    }

    @Test func aNestedErrorBodyCostsNothing() async throws {
        try await withHostileUpstream { archway, upstream in
            // Generous: an answer within 20 s each (the decoder before this one never finished).
            for _ in 0..<3 {
                let answer = try await HTTPSurfaceTests.curl(
                    ["--max-time", "20", "-H", "Accept: application/json", "\(archway.url)/v2/evil/nested/manifests/1"])
                #expect(answer.status == 404)
                #expect(answer.body.contains("MANIFEST_UNKNOWN"))
            }
            #expect(upstream.count("nested") == 3)
        }
    }

    @Test func aRedirectToAnInternalServiceIsNotFollowed() async throws {
        try await withHostileUpstream { archway, upstream in
            let answer = try await HTTPSurfaceTests.curl(["-H", "Accept: application/json", "\(archway.url)/v2/evil/redirect/manifests/1"])
            #expect(answer.status != 200)
            #expect(!answer.body.contains("s3cr3t"))
            #expect(upstream.count("redirect") >= 1)
            #expect(upstream.count("internal") == 0, "Archway connected to the internal service")
            // And what that service would have answered is nowhere in the cache.
            let metadata = sha256Digest(Data(#"{"instance-id":"i-0123","secret":"s3cr3t"}"#.utf8))
            let byDigest = try await HTTPSurfaceTests.curl(["\(archway.url)/v2/evil/redirect/manifests/\(metadata)"])
            #expect(byDigest.status != 200)
            #expect(upstream.count("internal") == 0)
        }
    }

    @Test func tagListsThatIgnorePaginationAreCutAndKept() async throws {
        try await withHostileUpstream { archway, upstream in
            var url = "\(archway.url)/v2/evil/tags/tags/list?n=100"
            var pages = 0
            while pages < 5 {
                let page = try await HTTPSurfaceTests.curl([url])
                #expect(page.status == 200)
                let tags = (try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any])?["tags"] as? [String]
                #expect(tags?.count == 100)
                pages += 1
                guard let link = page.headers["link"], let start = link.firstIndex(of: "<"), let end = link.firstIndex(of: ">") else {
                    break
                }
                url = archway.url + link[link.index(after: start)..<end]
            }
            #expect(pages == 5)
            #expect(upstream.count("tags") == 1, "the whole list was asked once and every page cut from it")
        }
    }

    @Test func refusalsAboutHowArchwayAskedAreNotTheClientsErrors() async throws {
        try await withHostileUpstream { archway, upstream in
            let answer = try await HTTPSurfaceTests.curl(["-H", "Accept: application/json", "\(archway.url)/v2/evil/431/manifests/1"])
            #expect(answer.status == 502)
            #expect(answer.body.contains("UNAVAILABLE"))
            #expect(!answer.body.contains("MANIFEST_UNKNOWN"))
        }
    }

    @Test func aManifestWhoseBodyAndTypeDisagreeIsRefusedAndNotCached() async throws {
        try await withHostileUpstream { archway, upstream in
            for _ in 0..<2 {
                let answer = try await CacheEnvironment.fetch(
                    "\(archway.url)/v2/evil/liar/manifests/1", headers: ["Accept": "application/vnd.docker.distribution.manifest.v2+json"])
                #expect(answer.status == 503)
            }
            #expect(upstream.count("liar") == 2, "nothing was cached")
        }
    }

    @Test func aWarningAboutAnIndexOfTwentyThousandPlatformsStaysShort() async throws {
        try await withHostileUpstream { archway, upstream in
            let answer = try await CacheEnvironment.fetch(
                "\(archway.url)/v2/evil/wide/manifests/1",
                headers: ["Accept": "application/vnd.oci.image.index.v1+json", "Archway-Platform": "linux/riscv64"])
            #expect(answer.status == 200)
            let warning = answer.headers["Warning"] ?? ""
            #expect(warning.contains("linux/riscv64"))
            #expect(warning.contains("more"))
            #expect(warning.utf8.count < 1024, "a \(warning.utf8.count)-byte Warning header")
        }
    }
}
