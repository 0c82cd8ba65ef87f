import Crypto
import Foundation
import HummingbirdBcrypt
import Synchronization

/// Who may pull: Basic credentials checked against bcrypt `htpasswd` entries, or a client
/// certificate already verified by TLS (`tls.client-ca`).
///
/// Successful checks are remembered for a few minutes (by a hash of the header), since bcrypt is
/// deliberately slow and clients send their credentials with every request.
public final class ClientAuthentication: Sendable {
    public enum Outcome: Sendable, Equatable {
        case anonymous
        case user(String)
        case invalid
    }

    let users: [String: String]
    /// Every `/v2/` request needs credentials (otherwise only private upstreams do).
    public let required: Bool
    /// Clients were verified by their certificate during the TLS handshake.
    public let mutualTLS: Bool
    /// Whether there are users who may present credentials.
    public var hasUsers: Bool { !users.isEmpty }
    private let verified = Mutex<[String: (user: String, until: ContinuousClock.Instant)]>([:])
    static let memory: Duration = .seconds(300)

    public init(users: [String: String], required: Bool, mutualTLS: Bool) {
        // htpasswd -B writes $2y$, which is bcrypt's $2b$.
        self.users = users.mapValues { $0.hasPrefix("$2y$") ? "$2b$" + $0.dropFirst(4) : $0 }
        self.required = required
        self.mutualTLS = mutualTLS
    }

    public func authenticate(_ authorization: String?) -> Outcome {
        guard let authorization, authorization.lowercased().hasPrefix("basic ") else {
            return mutualTLS ? .user("client-certificate") : .anonymous
        }
        let key = SHA256.hash(data: Data(authorization.utf8)).map { String(format: "%02x", $0) }.joined()
        let now = ContinuousClock.now
        if let known = verified.withLock({ $0[key] }), known.until > now { return .user(known.user) }
        guard let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return .invalid }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        // containers/image answers a Basic challenge with empty credentials when it has none.
        if user.isEmpty, password.isEmpty { return mutualTLS ? .user("client-certificate") : .anonymous }
        guard let hash = users[user], Bcrypt.verify(password, hash: hash) else { return .invalid }
        verified.withLock { cache in
            if cache.count > 10_000 { cache = [:] }
            cache[key] = (user, now + Self.memory)
        }
        return .user(user)
    }
}
