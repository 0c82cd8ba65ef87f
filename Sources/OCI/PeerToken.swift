import Foundation

/// How replicas prove to each other that a request comes from the fleet, without sending the
/// shared secret: an HMAC-SHA256 of what is asked (the digest) and when, valid for a minute.
///
/// `Authorization: Archway-Peer t=<unix seconds>,sig=<hex>`. Whoever sees a token learns the
/// right to ask for one digest for a minute, never the secret.
public enum PeerToken {
    public static let scheme = "Archway-Peer"
    /// How far a token's time may be from the receiver's clock.
    public static let window: TimeInterval = 60

    /// The `Authorization` value for asking a peer for `digest` at `date`.
    public static func authorization(secret: [UInt8], digest: Digest, at date: Date) -> String {
        let time = Int64(date.timeIntervalSince1970.rounded(.down))
        return "\(scheme) t=\(time),sig=\(signature(secret: secret, digest: digest, time: time))"
    }

    /// Whether `authorization` is a valid token for `digest` at `now`.
    public static func verify(_ authorization: String?, secret: [UInt8], digest: Digest, now: Date) -> Bool {
        guard let authorization, authorization.hasPrefix(scheme + " ") else { return false }
        var time: Int64?
        var given: String?
        for part in authorization.dropFirst(scheme.count + 1).split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return false }
            switch pair[0] {
            case "t": time = Int64(pair[1])
            case "sig": given = String(pair[1])
            default: return false
            }
        }
        guard let time, let given, abs(now.timeIntervalSince1970 - TimeInterval(time)) <= window else { return false }
        return constantTimeEqual(Array(given.utf8), Array(signature(secret: secret, digest: digest, time: time).utf8))
    }

    private static func signature(secret: [UInt8], digest: Digest, time: Int64) -> String {
        HMACSHA256.code(key: secret, message: Array("GET \(digest) \(time)".utf8)).map { byte in
            String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }.joined()
    }

    /// Compares without stopping at the first difference (the time it takes says nothing).
    private static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
