import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import OCI
import Synchronization
import Testing

@testable import RegistryClient

/// The libcurl transport and the registry protocol against live loopback servers that play a
/// token-authenticated registry, its token service and a CDN.
@Suite struct RegistryUpstreamTests {
    static let logger = Logger(label: "test")
    static let manifestJSON = Data(
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#
            .utf8)
    static let blob = Data((0..<200_000).map { UInt8($0 % 253) })

    /// The registry on 127.0.0.1 requires a Bearer token from `realmHost`'s `/token`; its blobs
    /// redirect to the CDN on `cdnHost`.
    static func registry(_ recorder: Recorder, realmHost: @escaping @Sendable () -> String, cdnHost: String?)
        -> @Sendable (Router<BasicRequestContext>) -> Void
    {
        { router in
            router.get("/token") { request, _ -> Response in
                let authorization = request.headers[.authorization] ?? "none"
                recorder.record("token \(authorization)")
                guard authorization == Credentials(username: "robot", password: "s3cret").basicAuthorization else {
                    return Response(status: .unauthorized)
                }
                let scope = request.uri.queryParameters["scope"].map(String.init) ?? ""
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"token":"tok.\#(scope)","expires_in":300}"#)))
            }
            let challenge = { @Sendable (repository: String) -> Response in
                var headers = HTTPFields()
                headers[.wwwAuthenticate] =
                    #"Bearer realm="http://\#(realmHost())/token",service="fake",scope="repository:\#(repository):pull""#
                return Response(
                    status: .unauthorized, headers: headers,
                    body: .init(
                        byteBuffer: ByteBuffer(string: #"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)))
            }
            router.get("/v2/org/app/manifests/{reference}") { request, _ -> Response in
                recorder.record("manifest \(request.headers[.authorization] ?? "none") accept=\(request.headers[.accept] ?? "none")")
                guard request.headers[.authorization] == "Bearer tok.repository:org/app:pull" else { return challenge("org/app") }
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/vnd.oci.image.manifest.v1+json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: manifestJSON))
                )
            }
            router.get("/v2/org/app/blobs/{digest}") { request, _ -> Response in
                recorder.record("blob \(request.headers[.authorization] ?? "none")")
                guard request.headers[.authorization] == "Bearer tok.repository:org/app:pull" else { return challenge("org/app") }
                guard let cdnHost else { return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: blob))) }
                return Response(status: .temporaryRedirect, headers: [.location: "http://\(cdnHost)/cdn/blob?sig=1"])
            }
        }
    }

    /// The upstream as Archway configures it, with the robot's credentials.
    static func robot(port: Int, redirectHosts: [String] = []) -> RegistryUpstream {
        RegistryUpstream(
            name: "fake.test",
            baseURL: "http://127.0.0.1:\(port)",
            credentials: Credentials(username: "robot", password: "s3cret"),
            redirectHosts: redirectHosts,
            logger: logger
        )
    }

    /// A redirect target that wants credentials: `401` with `challenge`.
    static func greedyCDN(_ recorder: Recorder, challenge: @escaping @Sendable () -> String)
        -> @Sendable (Router<BasicRequestContext>) -> Void
    {
        { router in
            router.get("/cdn/blob") { request, _ -> Response in
                recorder.record("cdn \(request.headers[.authorization] ?? "none")")
                return Response(status: .unauthorized, headers: [.wwwAuthenticate: challenge()])
            }
        }
    }

    static let cdn: @Sendable (Recorder) -> @Sendable (Router<BasicRequestContext>) -> Void = { recorder in
        { router in
            router.get("/cdn/blob") { request, _ -> Response in
                recorder.record("cdn \(request.headers[.authorization] ?? "none")")
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: blob)))
            }
        }
    }

    /// The fake registry (its own token service) with blobs redirected to a CDN on localhost
    /// that `cdn` builds, given the registry's port; `body` gets the registry's and the CDN's ports.
    static func withRegistryAndCDN(
        _ recorder: Recorder,
        cdn: @escaping @Sendable (@escaping @Sendable () -> Int) -> @Sendable (Router<BasicRequestContext>) -> Void,
        _ body: @escaping @Sendable (Int, Int) async throws -> Void
    ) async throws {
        let portBox = Mutex<Int>(0)
        let registryPort = { @Sendable in portBox.withLock { $0 } }
        try await withLiveServer(cdn(registryPort)) { cdnPort in
            try await withLiveServer(
                Self.registry(recorder, realmHost: { "127.0.0.1:\(registryPort())" }, cdnHost: "localhost:\(cdnPort)")
            ) { port in
                portBox.withLock { $0 = port }
                try await body(port, cdnPort)
            }
        }
    }

    /// A CDN that serves the blob, whatever the registry's port.
    static func plainCDN(_ recorder: Recorder)
        -> @Sendable (@escaping @Sendable () -> Int) -> @Sendable (Router<BasicRequestContext>) -> Void
    {
        { _ in Self.cdn(recorder) }
    }

    @Test func bearerTokensAreFetchedOnceAndRedirectsDropCredentials() async throws {
        let recorder = Recorder()
        try await Self.withRegistryAndCDN(recorder, cdn: Self.plainCDN(recorder)) { port, cdnPort in
            do {
                let upstream = Self.robot(port: port, redirectHosts: ["localhost:\(cdnPort)"])
                let repository = try RepositoryName("org/app")
                let accept = [MediaType.ociManifest.rawValue, MediaType.dockerManifest.rawValue]
                let first = try await upstream.manifest(repository, .tag(try Tag("1")), accepting: accept)
                #expect(first.bytes == Self.manifestJSON)
                #expect(first.mediaType == .ociManifest)
                let second = try await upstream.manifest(repository, .tag(try Tag("1")), accepting: accept)
                #expect(second.digest == first.digest)

                let blob = try await upstream.blob(repository, Digest.sha256(Self.blob))
                let bytes = try await blob.body.collect(upTo: 1 << 20)
                #expect(Data(buffer: bytes) == Self.blob)
            }
        }
        let basic = Credentials(username: "robot", password: "s3cret").basicAuthorization
        let bearer = "Bearer tok.repository:org/app:pull"
        let accept = "accept=application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
        #expect(
            recorder.all == [
                "manifest none \(accept)", "token \(basic)", "manifest \(bearer) \(accept)",
                "manifest \(bearer) \(accept)",
                "blob \(bearer)", "cdn none",
            ]
        )
    }

    @Test func credentialsAreNotSentToARealmOnAnotherHost() async throws {
        let recorder = Recorder()
        let portBox = Mutex<Int>(0)
        try await withLiveServer(Self.registry(recorder, realmHost: { "localhost:\(portBox.withLock { $0 })" }, cdnHost: nil)) { port in
            portBox.withLock { $0 = port }
            let upstream = Self.robot(port: port)
            await #expect(throws: UpstreamError.self) {
                _ = try await upstream.manifest(try RepositoryName("org/app"), .tag(try Tag("1")), accepting: [])
            }
        }
        // Not the upstream's host nor a token host: no credentials, and a loopback one is not
        // even asked (an upstream cannot aim Archway at this machine's services).
        #expect(!recorder.all.contains { $0.hasPrefix("token") })
        #expect(recorder.all == ["manifest none accept=none"])
    }

    @Test(arguments: [
        "Basic realm=\"cdn\"", "Bearer realm=\"http://127.0.0.1:PORT/token\",service=\"fake\",scope=\"repository:org/other:pull,push\"",
    ])
    func aRedirectTargetThatAsksForCredentialsGetsNone(challenge: String) async throws {
        let recorder = Recorder()
        let cdn = { @Sendable (registryPort: @escaping @Sendable () -> Int) in
            Self.greedyCDN(recorder) { challenge.replacingOccurrences(of: "PORT", with: String(registryPort())) }
        }
        try await Self.withRegistryAndCDN(recorder, cdn: cdn) { port, cdnPort in
            let upstream = Self.robot(port: port, redirectHosts: ["localhost:\(cdnPort)"])
            await #expect(throws: UpstreamError.self) {
                _ = try await upstream.blob(try RepositoryName("org/app"), Digest.sha256(Self.blob))
            }
        }
        let basic = Credentials(username: "robot", password: "s3cret").basicAuthorization
        // The upstream's own challenge is answered (one token, for the upstream's own scope)...
        #expect(recorder.all.filter { $0.hasPrefix("token") } == ["token \(basic)"])
        // ...and the redirect target sees neither the password nor a token.
        #expect(recorder.all.filter { $0.hasPrefix("cdn") } == ["cdn none"])
    }

    @Test func redirectsToThisMachineAreRefusedUnlessListed() async throws {
        let recorder = Recorder()
        try await Self.withRegistryAndCDN(recorder, cdn: Self.plainCDN(recorder)) { port, _ in
            do {
                _ = try await Self.robot(port: port).blob(try RepositoryName("org/app"), Digest.sha256(Self.blob))
                Issue.record("a redirect to a loopback service was followed")
            } catch let error as UpstreamError {
                #expect("\(error)".contains("refused to connect to"))
            }
        }
        #expect(!recorder.all.contains { $0.hasPrefix("cdn") })
    }

    @Test func aManifestThatDoesNotMatchItsDigestIsRefused() async throws {
        let recorder = Recorder()
        let portBox = Mutex<Int>(0)
        try await withLiveServer(Self.registry(recorder, realmHost: { "127.0.0.1:\(portBox.withLock { $0 })" }, cdnHost: nil)) { port in
            portBox.withLock { $0 = port }
            let upstream = Self.robot(port: port)
            // The fake serves the same manifest for every reference, so by another digest it lies.
            let wrong = Digest.sha256(Data("something else".utf8))
            do {
                _ = try await upstream.manifest(try RepositoryName("org/app"), .digest(wrong), accepting: [])
                Issue.record("a manifest that does not match its digest was accepted")
            } catch UpstreamError.invalidResponse(let message) {
                #expect(message.contains(wrong.description))
            }
        }
    }

    @Test func referrersComeFromTheAPIWhenTheUpstreamHasIt() async throws {
        let subject = Digest.sha256(Data("subject".utf8))
        var described = Descriptor(mediaType: .ociManifest, digest: Digest.sha256(Data("sbom".utf8)), size: 4)
        described.artifactType = "application/vnd.example.sbom.v1+json"
        let sbom = described
        let answer = ImageIndex(mediaType: .ociIndex, manifests: [sbom]).canonicalJSON()
        // A registry with the API for org/app; distribution 2.8 (no API) answers 404 for org/old.
        let routes: @Sendable (Router<BasicRequestContext>) -> Void = { router in
            router.get("/v2/org/app/referrers/:digest") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/vnd.oci.image.index.v1+json"],
                    body: .init(byteBuffer: ByteBuffer(data: answer)))
            }
            router.get("/v2/org/bad/referrers/:digest") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"not\": 1}")))
            }
        }
        try await withLiveServer(routes) { port in
            let upstream = RegistryUpstream(name: "api.test", baseURL: "http://127.0.0.1:\(port)", logger: Self.logger)
            let found = try await upstream.referrers(try RepositoryName("org/app"), subject)
            #expect(found?.manifests == [sbom])
            let none = try await upstream.referrers(try RepositoryName("org/old"), subject)
            #expect(none == nil, "no API: the tag schema is next")
            await #expect(throws: UpstreamError.self) { _ = try await upstream.referrers(try RepositoryName("org/bad"), subject) }
        }
    }

    @Test func unreachableUpstreamsAreTransportErrors() async throws {
        let port = try freePort()
        let upstream = RegistryUpstream(name: "gone.test", baseURL: "http://127.0.0.1:\(port)", logger: Self.logger)
        do {
            _ = try await upstream.manifest(try RepositoryName("a/b"), .tag(try Tag("1")), accepting: [])
            Issue.record("expected a failure")
        } catch let error as UpstreamError {
            #expect(error.isUnavailable)
            guard case .transport = error else {
                Issue.record("expected a transport error, got \(error)")
                return
            }
        }
    }
}

/// A loopback port nobody listens on (bound, read, closed).
func freePort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
