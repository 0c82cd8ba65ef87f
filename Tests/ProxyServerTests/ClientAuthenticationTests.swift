import Foundation
import HummingbirdBcrypt
import ProxyServer
import Testing

@Suite struct ClientAuthenticationTests {
    static let hash = Bcrypt.hash("s3cret", cost: 4)

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func basicCredentialsAreCheckedAgainstBcrypt() {
        let authentication = ClientAuthentication(
            users: ["robot": Self.hash, "htpasswd": "$2y$" + Self.hash.dropFirst(4)], required: false, mutualTLS: false
        )
        #expect(authentication.authenticate(nil) == .anonymous)
        #expect(authentication.authenticate("Bearer abc") == .anonymous)
        #expect(authentication.authenticate(Self.basic("robot", "s3cret")) == .user("robot"))
        #expect(authentication.authenticate(Self.basic("robot", "s3cret")) == .user("robot"), "remembered")
        #expect(authentication.authenticate(Self.basic("htpasswd", "s3cret")) == .user("htpasswd"), "$2y$ as htpasswd -B writes it")
        #expect(authentication.authenticate(Self.basic("robot", "wrong")) == .invalid)
        #expect(authentication.authenticate(Self.basic("nobody", "s3cret")) == .invalid)
        #expect(authentication.authenticate("Basic !!!not-base64") == .invalid)
        #expect(authentication.authenticate("Basic " + Data("no-colon".utf8).base64EncodedString()) == .invalid)
        #expect(authentication.authenticate(Self.basic("", "")) == .anonymous, "what containers/image sends without credentials")
    }

    @Test func aVerifiedClientCertificateIsAuthentication() {
        let authentication = ClientAuthentication(users: [:], required: true, mutualTLS: true)
        #expect(authentication.authenticate(nil) == .user("client-certificate"))
    }
}
