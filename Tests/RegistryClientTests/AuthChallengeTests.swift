import Foundation
import Logging
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
        ("docker.io", "https://registry-1.docker.io", [], "https://auth.docker.io/token", true),
        ("ghcr.io", "https://ghcr.io", [], "https://ghcr.io/token", true),
        ("quay.io", "https://quay.io", [], "https://quay.io/v2/auth", true),
        ("ghcr.io", "https://ghcr.io", [], "https://evil.io/token", false),
        // No "same domain" guesses: public suffixes and shared clouds are other tenants.
        ("a.co.uk", "https://a.co.uk", [], "https://evil.co.uk/token", false),
        ("x.azurecr.io", "https://x.azurecr.io", [], "https://y.azurecr.io/oauth2/token", false),
        ("registry-1.docker.io", "https://registry-1.docker.io", [], "https://auth.docker.io/token", true),
        ("quay.example", "https://quay.example", [], "https://auth.docker.io/token", false),
        ("registry.example.com", "https://registry.example.com", ["auth.example.org"], "https://auth.example.org/token", true),
        ("registry.example.com", "https://registry.example.com", [], "http://registry.example.com/token", false),
        ("local", "http://127.0.0.1:5000", [], "http://127.0.0.1:6000/token", true),
        ("local", "http://127.0.0.1:5000", [], "http://127.0.0.2/token", false),
        ("local", "http://localhost:5000", [], "http://127.0.0.1/token", false),
    ])
    func credentialsGoOnlyToTheUpstreamsHostAndItsTokenHosts(
        name: String, upstream: String, tokenHosts: [String], realm: String, trusted: Bool
    ) throws {
        let registry = RegistryUpstream(name: name, baseURL: upstream, tokenHosts: tokenHosts, logger: Logger(label: "test"))
        #expect(registry.trustsTokenRealm(try #require(URLParts(realm))) == trusted)
    }

    @Test(
        arguments: [
            ("127.0.0.1", nil, true), ("127.8.9.10", nil, true), ("0.0.0.0", nil, true), ("169.254.169.254", nil, true),
            ("::1", nil, true), ("::", nil, true), ("fe80::1", nil, true), ("::ffff:127.0.0.1", nil, true),
            ("::ffff:169.254.1.1", nil, true), ("10.1.2.3", "10.1.2.3", true), ("not an address", nil, true),
            ("10.1.2.3", "10.9.9.9", false), ("93.184.216.34", nil, false), ("2001:db8::1", nil, false),
        ] as [(String, String?, Bool)])
    func internalAddressesAreThisMachineLoopbackAndLinkLocal(address: String, local: String?, expected: Bool) {
        #expect(InternalAddress.isInternal(address, local: local) == expected)
    }

    @Test func locationsResolveAgainstTheRequest() {
        #expect(URLParts.resolve("/v2/x/blobs/y", against: "https://r.io:443/v2/a") == "https://r.io:443/v2/x/blobs/y")
        #expect(URLParts.resolve("https://cdn.example/blob?sig=1", against: "https://r.io/v2/a") == "https://cdn.example/blob?sig=1")
        #expect(URLParts.resolve("//cdn.example/blob", against: "https://r.io/v2/a") == nil)
        #expect(URLParts.resolve("file:///etc/passwd", against: "https://r.io/v2/a") == nil)
        #expect(URLParts("https://user:pw@host/") == nil)
    }
}

@Suite struct UpstreamAnswerTests {
    @Test func tokenGrantsAreBounded() {
        #expect(UpstreamAnswer.tokenGrant(Data(#"{"token":"abc","expires_in":300}"#.utf8)) == .init(token: "abc", lifetime: .seconds(300)))
        #expect(UpstreamAnswer.tokenGrant(Data(#"{"access_token":"xyz"}"#.utf8))?.lifetime == .seconds(60))
        #expect(UpstreamAnswer.tokenGrant(Data(#"{"token":"","access_token":"xyz"}"#.utf8))?.token == "xyz")
        #expect(UpstreamAnswer.tokenGrant(Data(#"{"token":"a","expires_in":99999999}"#.utf8))?.lifetime == .seconds(86_400))
        #expect(UpstreamAnswer.tokenGrant(Data(#"{"token":"a","expires_in":-5}"#.utf8))?.lifetime == .seconds(1))
        // A token that would break or smuggle a header line is no token.
        #expect(UpstreamAnswer.tokenGrant(Data(#"{"token":"a\r\nX-Evil: 1"}"#.utf8)) == nil)
        #expect(UpstreamAnswer.tokenGrant(Data(#"{"token":"a b"}"#.utf8)) == nil)
        #expect(UpstreamAnswer.tokenGrant(Data("{\"token\":\"\(String(repeating: "x", count: 20_000))\"}".utf8)) == nil)
        #expect(UpstreamAnswer.tokenGrant(Data("not json".utf8)) == nil)
    }

    @Test func tagListsAndLinks() {
        #expect(UpstreamAnswer.tagPage(Data(#"{"name":"a/b","tags":["1","2"]}"#.utf8))?.tags == ["1", "2"])
        #expect(UpstreamAnswer.tagPage(Data(#"{"name":"a/b","tags":null}"#.utf8))?.tags == [])
        #expect(UpstreamAnswer.tagPage(Data(#"{"tags":["1"]}"#.utf8)) == nil)
        let many = (0..<120_000).map { "\"\($0)\"" }.joined(separator: ",")
        #expect(UpstreamAnswer.tagPage(Data(#"{"name":"a","tags":["#.utf8) + Data(many.utf8) + Data("]}".utf8))?.tags.count == 100_000)
        #expect(UpstreamAnswer.hasNextPage([#"</v2/a/tags/list?last=x&n=2>; rel="next""#]))
        #expect(UpstreamAnswer.hasNextPage(["</v2/a/tags/list?last=x>; rel=next"]))
        #expect(!UpstreamAnswer.hasNextPage([#"</v2/a/tags/list?rel="next">; rel="prev""#]))
        #expect(!UpstreamAnswer.hasNextPage([]))
    }
}
