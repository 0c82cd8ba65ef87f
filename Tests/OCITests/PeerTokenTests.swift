import Foundation
import OCI
import Testing

struct PeerTokenTests {
    let secret = Array("a secret of the fleet, 32 bytes or more".utf8)
    let digest = Digest.sha256(Data("layer".utf8))
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aTokenIsValidForItsDigestAndAMinute() {
        let token = PeerToken.authorization(secret: secret, digest: digest, at: now)
        #expect(token.hasPrefix("Archway-Peer t=1800000000,sig="))
        #expect(!token.contains("secret"))
        #expect(PeerToken.verify(token, secret: secret, digest: digest, now: now))
        #expect(PeerToken.verify(token, secret: secret, digest: digest, now: now.addingTimeInterval(59)))
        #expect(!PeerToken.verify(token, secret: secret, digest: digest, now: now.addingTimeInterval(61)), "expired")
        #expect(!PeerToken.verify(token, secret: secret, digest: digest, now: now.addingTimeInterval(-61)), "from the future")
        #expect(!PeerToken.verify(token, secret: secret, digest: Digest.sha256(Data("other".utf8)), now: now), "another digest")
        #expect(!PeerToken.verify(token, secret: Array("another fleet's secret".utf8), digest: digest, now: now), "another secret")
    }

    @Test func malformedTokensAreRefused() {
        let valid = PeerToken.authorization(secret: secret, digest: digest, at: now)
        let signature = String(valid.split(separator: "sig=")[1])
        for token in [
            nil, "", "Bearer x", "Archway-Peer", "Archway-Peer t=1800000000", "Archway-Peer sig=\(signature)",
            "Archway-Peer t=1800000001,sig=\(signature)", "Archway-Peer t=1800000000,sig=\(signature.dropLast())",
            "Archway-Peer t=1800000000,sig=\(signature),x=1", "archway-peer t=1800000000,sig=\(signature)",
        ] {
            #expect(!PeerToken.verify(token, secret: secret, digest: digest, now: now), "\(String(describing: token))")
        }
    }
}
