import OCI
import ProxyServer
import Testing

@Suite struct RegistryRouteTests {
    static let digest = "sha256:" + String(repeating: "0123456789abcdef", count: 4)

    @Test(arguments: [
        ("/v2/", RegistryRoute.base),
        ("/v2", .base),
        ("/_archway/health", .health),
        ("/", .notFound),
        ("/v2/library/nginx/referrer/x", .notFound),
        ("/_archway/internal/fills", .notFound),
        ("/v2/library/nginx/blobs/uploads/", .upload),
        ("/v2/library/nginx/blobs/uploads/abc", .upload),
    ])
    func fixedRoutes(path: String, expected: RegistryRoute) throws {
        #expect(try RegistryRoute(path: path) == expected)
    }

    @Test func manifestsBlobsAndTags() throws {
        let name = try RepositoryName("ghcr.io/org/app")
        #expect(try RegistryRoute(path: "/v2/ghcr.io/org/app/manifests/1.0") == .manifest(name, .tag(try Tag("1.0"))))
        #expect(
            try RegistryRoute(path: "/v2/ghcr.io/org/app/manifests/\(Self.digest)")
                == .manifest(name, .digest(try Digest(parsing: Self.digest)))
        )
        #expect(try RegistryRoute(path: "/v2/ghcr.io/org/app/blobs/\(Self.digest)") == .blob(name, try Digest(parsing: Self.digest)))
        #expect(try RegistryRoute(path: "/v2/ghcr.io/org/app/tags/list") == .tags(name))
        #expect(
            try RegistryRoute(path: "/v2/ghcr.io/org/app/referrers/\(Self.digest)") == .referrers(name, try Digest(parsing: Self.digest)))
        #expect(try RegistryRoute(path: "/_archway/internal/fills/\(Self.digest)") == .peerFill(try Digest(parsing: Self.digest)))
        // A repository may itself contain a component named like a route word.
        #expect(
            try RegistryRoute(path: "/v2/a/manifests/b/manifests/latest")
                == .manifest(try RepositoryName("a/manifests/b"), .tag(try Tag("latest")))
        )
    }

    @Test(arguments: [
        ("/v2/../etc/manifests/latest", "NAME_INVALID"),
        ("/v2/%2e%2e/manifests/latest", "NAME_INVALID"),
        ("/v2/a//b/manifests/latest", "NAME_INVALID"),
        ("/v2/a\\b/manifests/latest", "NAME_INVALID"),
        ("/v2/a\u{0}b/manifests/latest", "NAME_INVALID"),
        ("/v2/Library/nginx/manifests/latest", "NAME_INVALID"),
        ("/v2/\(String(repeating: "a", count: 256))/manifests/latest", "NAME_INVALID"),
        ("/v2/library/nginx/manifests/sha256:totallywrong", "DIGEST_INVALID"),
        ("/v2/library/nginx/referrers/x", "DIGEST_INVALID"),
        ("/_archway/internal/fills/../../etc", "DIGEST_INVALID"),
        ("/v2/library/nginx/manifests/sha512:abc", "DIGEST_INVALID"),
        ("/v2/library/nginx/blobs/sha256:ABC", "DIGEST_INVALID"),
        ("/v2/library/nginx/blobs/latest", "DIGEST_INVALID"),
        ("/v2/library/nginx/manifests/\(String(repeating: "t", count: 129))", "MANIFEST_UNKNOWN"),
        ("/v2/library/nginx/manifests/.hidden", "MANIFEST_UNKNOWN"),
        ("/v2/r/manifests/.INVALID", "MANIFEST_UNKNOWN"),
    ])
    func hostilePathsAreRefused(path: String, code: String) {
        #expect {
            _ = try RegistryRoute(path: path)
        } throws: { error in
            (error as? RegistryError)?.code.rawValue == code
        }
    }
}
