import ArchwayTesting
import Cache
import Foundation
import HummingbirdBcrypt
import OCI
import Testing

/// The operator's page with the real binary: who may read it, where it is served, a real
/// headless Chromium reading it after a scripted run of pulls, and 10 000 cached repositories.
@Suite(.serialized) struct OperatorPageTests {
    static let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"

    @Test func onlyTheAdminsReadTheOperatorsEndpoints() async throws {
        try await withUpstreamRegistry { upstream in
            try await withTemporaryDirectory { directory in
                let htpasswd = directory.appendingPathComponent("htpasswd")
                let alice = "alice:$2y$" + Bcrypt.hash("wonderland", cost: 4).dropFirst(4)
                let bob = "bob:$2y$" + Bcrypt.hash("builder", cost: 4).dropFirst(4)
                try "\(alice)\n\(bob)\n".write(to: htpasswd, atomically: true, encoding: .utf8)
                let configuration = """
                    upstreams:
                      - name: registry.test
                        url: \(upstream.url)
                    default-upstream: registry.test
                    auth:
                      htpasswd: \(htpasswd.path)
                      required: false
                      admins: [alice]

                    """
                try await withArchwayProcess(configuration: configuration) { archway in
                    // curl, not URLSession: FoundationNetworking waits forever for a credential on a 401.
                    for path in ["/_archway/", "/_archway/api/overview", "/_archway/mismatches", "/metrics", "/_archway/page.js"] {
                        let anonymous = try await HTTPSurfaceTests.curl([archway.url + path])
                        #expect(anonymous.status == 401, "\(path): \(anonymous.status)")
                        #expect(anonymous.headers["www-authenticate"]?.contains("Basic") == true)
                        let user = try await HTTPSurfaceTests.curl(["-u", "bob:builder", archway.url + path])
                        #expect(user.status == 403, "\(path) for bob: \(user.status)")
                        let wrong = try await HTTPSurfaceTests.curl(["-u", "alice:nope", archway.url + path])
                        #expect(wrong.status == 401)
                        let admin = try await HTTPSurfaceTests.curl(["-u", "alice:wonderland", archway.url + path])
                        #expect(admin.status == 200, "\(path) for alice: \(admin.status)")
                    }
                    // Probes stay open.
                    #expect(try await HTTPSurfaceTests.curl([archway.url + "/_archway/health"]).status == 200)
                    #expect(try await HTTPSurfaceTests.curl([archway.url + "/_archway/ready"]).status == 200)
                    let page = try await HTTPSurfaceTests.curl(["-u", "alice:wonderland", archway.url + "/_archway/"])
                    #expect(page.headers["content-security-policy"]?.contains("default-src 'none'") == true)
                    #expect(page.headers["content-type"]?.hasPrefix("text/html") == true)
                    // No secret on the page: not the htpasswd hashes, not the file's path.
                    #expect(!page.body.contains("$2") && !page.body.contains(htpasswd.path))
                }
            }
        }
    }

    @Test func adminListenServesTheOperatorsEndpointsThereAlone() async throws {
        try await withUpstreamRegistry { upstream in
            let adminPort = try freeLoopbackPort()
            let configuration = """
                upstreams:
                  - name: registry.test
                    url: \(upstream.url)
                default-upstream: registry.test
                admin-listen: 127.0.0.1:\(adminPort)

                """
            try await withArchwayProcess(configuration: configuration) { archway in
                let admin = "http://127.0.0.1:\(adminPort)"
                try await waitUntil(timeout: .seconds(10), "the admin listener") {
                    (try? await httpRequest("GET", admin + "/_archway/health"))?.status == 200
                }
                for path in ["/_archway/", "/_archway/api/images", "/metrics", "/_archway/mismatches"] {
                    #expect(try await httpRequest("GET", archway.url + path).status == 404, "\(path) on the main listener")
                    #expect(try await httpRequest("GET", admin + path).status == 200, "\(path) on admin-listen")
                }
                #expect(try await httpRequest("GET", archway.url + "/v2/").status == 200)
                #expect(try await httpRequest("GET", archway.url + "/_archway/health").status == 200)
                #expect(try await httpRequest("GET", admin + "/v2/").status == 404)
                #expect(archway.output().contains(#""msg":"admin listening""#))
            }
        }
    }

    @Test func tenThousandCachedRepositoriesArePaginated() async throws {
        let storage = try makeTemporaryDirectory(prefix: "archway-page-storage")
        defer { try? FileManager.default.removeItem(at: storage) }
        let layout = StorageLayout(root: storage)
        try FileManager.default.createDirectory(at: layout.root, withIntermediateDirectories: true)
        let catalog = try SQLiteCatalog(path: layout.catalogPath.path)
        let manifest = Data(#"{"schemaVersion":2}"#.utf8)
        let descriptor = Descriptor(mediaType: .ociManifest, digest: Digest.sha256(manifest), size: Int64(manifest.count))
        // The content too: at start-up the catalog forgets rows whose content is not stored.
        try await LocalBlobStore(layout: layout).store(manifest, as: descriptor.digest)
        try await catalog.recordRepositories(
            (0..<10_000).map {
                RepositoryKey(upstream: "registry.test", repository: try! RepositoryName(String(format: "team/app-%05d", $0)))
            },
            tag: "1.0", descriptor: descriptor, at: Date(timeIntervalSince1970: 1_700_000_000))
        try await withUpstreamRegistry { upstream in
            let configuration = "upstreams:\n  - name: registry.test\n    url: \(upstream.url)\ndefault-upstream: registry.test\n"
            let archway = try await ArchwayProcess.start(configuration: configuration, storage: storage)
            defer { Task { await archway.close() } }
            let first = try await httpRequest("GET", archway.url + "/_archway/")
            #expect(first.status == 200)
            #expect(first.bodyText.contains("Cached repositories <span class=\"muted\">(10000)</span>"))
            #expect(first.bodyText.contains("page 1 of 200"))
            #expect(first.bodyText.components(separatedBy: "<td>registry.test/team/app-").count - 1 == 50)
            let last = try await httpRequest("GET", archway.url + "/_archway/?page=200")
            #expect(last.bodyText.contains("page 200 of 200") && last.bodyText.contains("rel=\"prev\""))
            #expect(!last.bodyText.contains("rel=\"next\""))
            let json = try await httpRequest("GET", archway.url + "/_archway/api/images?page=3")
            let images = try #require(try JSONSerialization.jsonObject(with: json.body) as? [String: Any])
            #expect(images["total"] as? Int == 10_000)
            #expect((images["cached"] as? [Any])?.count == 50)
            #expect(images["page"] as? Int == 3)
            // Every repository appears once across the pages.
            var seen = Set<String>()
            for page in 1...200 {
                let answer = try await httpRequest("GET", archway.url + "/_archway/api/images?page=\(page)")
                let object = try #require(try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])
                for row in (object["cached"] as? [[String: Any]]) ?? [] { seen.insert(row["repository"] as? String ?? "") }
            }
            #expect(seen.count == 10_000)
            for bad in ["0", "-1", "abc", "99999999999"] {
                #expect(try await httpRequest("GET", archway.url + "/_archway/?page=\(bad)").status == 400, "page=\(bad)")
            }
            await archway.close()
        }
    }
}

extension SQLiteCatalog {
    /// A cached tag in each of `repositories`, all naming one manifest.
    func recordRepositories(_ repositories: [RepositoryKey], tag: String, descriptor: Descriptor, at date: Date) async throws {
        for repository in repositories {
            let key = TagKey(upstream: repository.upstream, repository: repository.repository.value, tag: tag, accepting: [])
            try await recordManifest(descriptor, from: repository, tag: key, at: date)
        }
    }
}

/// `make demo` runs `archway-cluster demo`: the same, once, without waiting for Ctrl-C.
@Suite struct DemoTests {
    @Test func theDemoShowsTheWholeProduct() async throws {
        let binary = URL(fileURLWithPath: try ArchwayProcess.binaryPath()).deletingLastPathComponent().appendingPathComponent(
            "archway-cluster")
        let result = try await run(binary.path, ["demo", "--once"], timeout: .seconds(300)).requireSuccess()
        let out = result.stdout
        #expect(out.contains("amd64: got sha256:") && out.contains("(amd64), the image of demo/app:amd64-1.0"), "\(out)")
        #expect(out.contains("arm64: got sha256:") && out.contains("(arm64), the image of demo/app:arm64-1.0"), "\(out)")
        #expect(out.contains("linux/amd64  sha256:") && out.contains("linux/arm64  sha256:"))
        #expect(out.contains("Warning: 299 archway"))
        #expect(out.contains("mismatch: registry.demo/demo/tool:1.0 single-platform, linux/arm64 client"))
        #expect(out.contains(#"from: "{repository}:arm64-{tag}""#))
        #expect(out.contains("/_archway/"))
    }
}
