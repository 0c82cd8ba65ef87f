import ArchwayApp
import ArchwayTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import OCI
import Proxy
import RegistryClient
import Testing

@Suite struct RegistryResponderTests {
    static let amd64 = Platform(os: "linux", architecture: "amd64")
    static let arm64 = Platform(os: "linux", architecture: "arm64", variant: "v8")
    static let digestHeader = HTTPField.Name("Docker-Content-Digest")!

    func hub() -> InMemoryUpstream {
        let upstream = InMemoryUpstream(name: "docker.io")
        let child = InMemoryImages.image(upstream, repository: "library/app", tag: "amd64", platform: Self.amd64)
        let other = InMemoryImages.image(upstream, repository: "library/app", tag: "arm64", platform: Self.arm64)
        InMemoryImages.index(upstream, repository: "library/app", tag: "1.0", children: [(child, Self.amd64), (other, Self.arm64)])
        return upstream
    }

    static func errorCode(_ body: ByteBuffer) -> String? {
        RegistryError.decodeBody(Data(buffer: body))?.first?.code.rawValue
    }

    @Test func baseAnswersWithTheAPIVersion() async throws {
        try await withArchway(upstreams: [.init(upstream: hub())]) { client in
            let response = try await client.execute(uri: "/v2/", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("Docker-Distribution-API-Version")!] == "registry/2.0")
        }
    }

    @Test func manifestByTagIsServedByteForByte() async throws {
        let upstream = hub()
        let index = try await upstream.manifest(try RepositoryName("library/app"), .tag(try Tag("1.0")), accepting: [])
        try await withArchway(upstreams: [.init(upstream: upstream)]) { client in
            let response = try await client.execute(uri: "/v2/library/app/manifests/1.0", method: .get)
            #expect(response.status == .ok)
            #expect(Data(buffer: response.body) == index.bytes)
            #expect(response.headers[.contentType] == MediaType.ociIndex.rawValue)
            #expect(response.headers[Self.digestHeader] == index.digest.description)

            let head = try await client.execute(uri: "/v2/library/app/manifests/1.0", method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[Self.digestHeader] == index.digest.description)
            #expect(head.headers[.contentLength] == String(index.bytes.count))
            #expect(head.body.readableBytes == 0)
        }
    }

    @Test func dockerHubNamesGetLibrary() async throws {
        let upstream = hub()
        try await withArchway(upstreams: [.init(upstream: upstream)]) { client in
            let response = try await client.execute(uri: "/v2/app/manifests/1.0", method: .get)
            #expect(response.status == .ok)
        }
        #expect(upstream.calls == ["manifest library/app 1.0"])
    }

    @Test func unknownTagIsManifestUnknown() async throws {
        try await withArchway(upstreams: [.init(upstream: hub())]) { client in
            let response = try await client.execute(uri: "/v2/library/app/manifests/2.0", method: .get)
            #expect(response.status == .notFound)
            #expect(Self.errorCode(response.body) == "MANIFEST_UNKNOWN")
        }
    }

    @Test func invalidDigestNeverReachesTheUpstream() async throws {
        let upstream = hub()
        try await withArchway(upstreams: [.init(upstream: upstream)]) { client in
            let response = try await client.execute(uri: "/v2/library/app/manifests/sha256:totallywrong", method: .get)
            #expect(response.status == .badRequest)
            #expect(Self.errorCode(response.body) == "DIGEST_INVALID")
            let name = try await client.execute(uri: "/v2/library/../app/manifests/1.0", method: .get)
            #expect(name.status == .badRequest)
            #expect(Self.errorCode(name.body) == "NAME_INVALID")
        }
        #expect(upstream.calls.isEmpty)
    }

    @Test(arguments: [HTTPRequest.Method.put, .post, .patch, .delete])
    func writesAreUnsupported(method: HTTPRequest.Method) async throws {
        let upstream = hub()
        try await withArchway(upstreams: [.init(upstream: upstream)]) { client in
            for uri in ["/v2/library/app/manifests/1.0", "/v2/library/app/blobs/uploads/", "/v2/"] {
                let response = try await client.execute(uri: uri, method: method, body: ByteBuffer(string: "{}"))
                #expect(response.status == .methodNotAllowed)
                #expect(Self.errorCode(response.body) == "UNSUPPORTED")
            }
        }
        #expect(upstream.calls.isEmpty)
    }

    @Test func blobsHonourRange() async throws {
        let upstream = InMemoryUpstream(name: "docker.io")
        let data = Data((0..<1000).map { UInt8($0 % 251) })
        let digest = upstream.addBlob(data)
        try await withArchway(upstreams: [.init(upstream: upstream)]) { client in
            let whole = try await client.execute(uri: "/v2/library/app/blobs/\(digest)", method: .get)
            #expect(whole.status == .ok)
            #expect(Data(buffer: whole.body) == data)
            #expect(whole.headers[Self.digestHeader] == digest.description)

            let part = try await client.execute(uri: "/v2/library/app/blobs/\(digest)", method: .get, headers: [.range: "bytes=10-19"])
            #expect(part.status == .partialContent)
            #expect(part.headers[.contentRange] == "bytes 10-19/1000")
            #expect(Data(buffer: part.body) == data[10...19])

            let malformed = try await client.execute(uri: "/v2/library/app/blobs/\(digest)", method: .get, headers: [.range: "bytes=oops"])
            #expect(malformed.status == .ok)
            #expect(malformed.body.readableBytes == 1000)

            let missing = try await client.execute(uri: "/v2/library/app/blobs/sha256:\(String(repeating: "0", count: 64))", method: .get)
            #expect(missing.status == .notFound)
            #expect(Self.errorCode(missing.body) == "BLOB_UNKNOWN")
        }
    }

    @Test func routingByNamespaceAndPrefix() async throws {
        let hub = hub()
        let ghcr = InMemoryUpstream(name: "ghcr.io")
        InMemoryImages.image(ghcr, repository: "org/tool", tag: "1", platform: Self.amd64)
        try await withArchway(upstreams: [.init(upstream: hub, aliases: ["index.docker.io"]), .init(upstream: ghcr)]) { client in
            #expect(try await client.execute(uri: "/v2/org/tool/manifests/1?ns=ghcr.io", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/v2/ghcr.io/org/tool/manifests/1", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/v2/library/app/manifests/1.0?ns=index.docker.io", method: .get).status == .ok)
            let refused = try await client.execute(uri: "/v2/org/tool/manifests/1?ns=evil.example.com", method: .get)
            #expect(refused.status == .notFound)
            #expect(Self.errorCode(refused.body) == "NAME_UNKNOWN")
        }
        // The second ask of ghcr.io's tag is answered from the cache.
        #expect(ghcr.calls == ["manifest org/tool 1"])
        #expect(hub.calls == ["manifest library/app 1.0"])
    }

    @Test func tagListsPaginate() async throws {
        let upstream = hub()
        try await withArchway(upstreams: [.init(upstream: upstream)]) { client in
            let first = try await client.execute(uri: "/v2/library/app/tags/list?n=2", method: .get)
            #expect(first.status == .ok)
            let page = try JSONDecoder().decode([String: AnyCodableTags].self, from: Data(buffer: first.body))
            #expect(page["tags"]?.values == ["1.0", "amd64"])
            #expect(first.headers[HTTPField.Name("Link")!] == #"</v2/library/app/tags/list?last=amd64&n=2>; rel="next""#)
            let rest = try await client.execute(uri: "/v2/library/app/tags/list?n=2&last=amd64", method: .get)
            let restPage = try JSONDecoder().decode([String: AnyCodableTags].self, from: Data(buffer: rest.body))
            #expect(restPage["tags"]?.values == ["arm64"])
            #expect(rest.headers[HTTPField.Name("Link")!] == nil)
            let bad = try await client.execute(uri: "/v2/library/app/tags/list?n=-1", method: .get)
            #expect(bad.status == .badRequest)
        }
    }

    @Test func unreachableUpstreamIsUnavailable() async throws {
        let upstream = hub()
        upstream.isReachable = false
        try await withArchway(upstreams: [.init(upstream: upstream)]) { client in
            let response = try await client.execute(uri: "/v2/library/app/manifests/1.0", method: .get)
            #expect(response.status == .serviceUnavailable)
            #expect(RegistryResponderTests.errorCode(response.body) == "UNAVAILABLE")
        }
    }
}

/// Decodes either the `name` string or the `tags` array of a tag list.
struct AnyCodableTags: Decodable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let list = try? container.decode([String].self) {
            values = list
        } else {
            values = [try container.decode(String.self)]
        }
    }
}

/// With authentication required, the registry API asks for credentials, and nothing else does.
@Suite struct RequiredAuthenticationTests {
    @Test func onlyTheRegistryAPIAsksForCredentials() async throws {
        let robot = "$2b$04$invalidinvalidinvalidinuWvCxWm3x2AKVZw1i2aHZMu3xNn5D6a"
        let requireCredentials: (inout Configuration) -> Void = { $0.authentication = .init(users: ["robot": robot], required: true) }
        let check: @Sendable (any TestClientProtocol) async throws -> Void = { client in
            var statuses: [String: Int] = [:]
            for path in ["/v2/", "/v2/library/app/manifests/1", "/_archway/health", "/no/such/path"] {
                statuses[path] = try await client.execute(uri: path, method: .get).status.code
            }
            #expect(statuses == ["/v2/": 401, "/v2/library/app/manifests/1": 401, "/_archway/health": 200, "/no/such/path": 404])
        }
        try await withArchway(upstreams: [.init(upstream: InMemoryUpstream(name: "docker.io"))], configure: requireCredentials, check)
    }
}

@Suite struct InternalErrorTests {
    /// An upstream that fails in a way nobody meant for a client: a storage path, SQL.
    struct BrokenUpstream: Upstream {
        struct Failure: Error, CustomStringConvertible {
            var description: String { "SQLITE_CORRUPT at /var/lib/archway/catalog.db" }
        }
        let name = "docker.io"
        func manifest(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws -> Manifest {
            throw Failure()
        }
        func manifestDescriptor(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws
            -> Descriptor
        { throw Failure() }
        func blobLength(_ repository: RepositoryName, _ digest: Digest) async throws -> Int64? { throw Failure() }
        func blob(_ repository: RepositoryName, _ digest: Digest) async throws -> BlobResponse { throw Failure() }
        func tags(_ repository: RepositoryName, count: Int?, last: String?) async throws -> TagPage { throw Failure() }
    }

    @Test func anInternalErrorIsAGeneric500WithoutItsText() async throws {
        try await withArchway(upstreams: [.init(upstream: BrokenUpstream())]) { client in
            let response = try await client.execute(uri: "/v2/library/app/manifests/1.0", method: .get)
            #expect(response.status == .internalServerError)
            let text = String(buffer: response.body)
            #expect(text.contains("internal error (request "), "\(text)")
            #expect(!text.contains("SQLITE") && !text.contains("/var/lib"), "\(text)")
            #expect(RegistryResponderTests.errorCode(response.body) == "UNAVAILABLE")
        }
    }
}
