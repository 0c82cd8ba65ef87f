import Testing

@testable import RegistryClient

@Suite struct AuthChallengeTests {
    @Test func dockerHubBearer() throws {
        let challenge = try #require(
            AuthChallenge(
                header: #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#
            )
        )
        #expect(challenge.scheme == .bearer)
        #expect(challenge.parameters["realm"] == "https://auth.docker.io/token")
        #expect(challenge.parameters["service"] == "registry.docker.io")
        #expect(challenge.parameters["scope"] == "repository:library/nginx:pull")
    }

    @Test func quotedCommasEscapesAndBareValues() throws {
        let challenge = try #require(AuthChallenge(header: #"bearer Realm="a,b", scope="x:\"y\":pull" , error=insufficient_scope"#))
        #expect(challenge.scheme == .bearer)
        #expect(challenge.parameters["realm"] == "a,b")
        #expect(challenge.parameters["scope"] == #"x:"y":pull"#)
        #expect(challenge.parameters["error"] == "insufficient_scope")
    }

    @Test(arguments: ["", "   "])
    func emptyHeadersAreNotChallenges(header: String) {
        #expect(AuthChallenge(header: header) == nil)
    }

    @Test func basicAndUnknownSchemes() throws {
        #expect(try #require(AuthChallenge(header: #"Basic realm="registry""#)).scheme == .basic)
        #expect(try #require(AuthChallenge(header: "Negotiate")).scheme == .other("Negotiate"))
        // Unterminated quotes end the value instead of running away.
        #expect(try #require(AuthChallenge(header: #"Bearer realm="unterminated"#)).parameters["realm"] == "unterminated")
    }

    @Test func basicCredentialsEncode() {
        #expect(Credentials(username: "Aladdin", password: "open sesame").basicAuthorization == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        #expect(Credentials(username: "a", password: "").basicAuthorization == "Basic YTo=")
    }
}

@Suite struct URLPartsTests {
    @Test(arguments: [
        ("https://registry-1.docker.io", "https://auth.docker.io/token", true),
        ("https://ghcr.io", "https://ghcr.io/token", true),
        ("https://quay.io", "https://quay.io/v2/auth", true),
        ("https://ghcr.io", "https://evil.io/token", false),
        ("https://registry.example.com", "https://auth.example.org/token", false),
        ("http://127.0.0.1:5000", "http://127.0.0.1:6000/token", true),
        ("http://127.0.0.1:5000", "http://127.0.0.2/token", false),
        ("http://10.0.0.5:5000", "http://11.0.0.5/token", false),
        ("http://localhost:5000", "http://127.0.0.1/token", false),
    ])
    func credentialsStayOnTheUpstreamsDomain(upstream: String, realm: String, shared: Bool) throws {
        let upstreamParts = try #require(URLParts(upstream))
        let realmParts = try #require(URLParts(realm))
        #expect(realmParts.sharesDomain(with: upstreamParts) == shared)
    }

    @Test func locationsResolveAgainstTheRequest() {
        #expect(URLParts.resolve("/v2/x/blobs/y", against: "https://r.io:443/v2/a") == "https://r.io:443/v2/x/blobs/y")
        #expect(URLParts.resolve("https://cdn.example/blob?sig=1", against: "https://r.io/v2/a") == "https://cdn.example/blob?sig=1")
        #expect(URLParts.resolve("//cdn.example/blob", against: "https://r.io/v2/a") == nil)
        #expect(URLParts.resolve("file:///etc/passwd", against: "https://r.io/v2/a") == nil)
        #expect(URLParts("https://user:pw@host/") == nil)
    }
}
