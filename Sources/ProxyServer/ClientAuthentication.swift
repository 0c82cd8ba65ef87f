import Foundation
import HummingbirdBcrypt
import OCI
import Synchronization

/// Who may pull: Basic credentials checked against bcrypt `htpasswd` entries, or a client
/// certificate already verified by TLS (`tls.client-ca`).
///
/// bcrypt is slow on purpose, so it is kept away from everything else a request does:
/// - verifications run on their own threads (``PasswordVerifier``), never on Swift's
///   cooperative pool, at most a few at once, with a bounded queue;
/// - every outcome, success or failure, is remembered for a few minutes by a hash of the
///   header, and identical headers arriving together share one verification;
/// - an address whose credentials failed too often in the last minute is refused without
///   verifying anything (`429`);
/// - an unknown user is checked against a hash of the same cost, so timing does not tell which
///   user names exist.
public final class ClientAuthentication: Sendable {
    public enum Outcome: Sendable, Equatable {
        case anonymous
        case user(String)
        case invalid
        /// Too many failed attempts from this address, or too many verifications waiting.
        case throttled
    }

    let users: [String: String]
    /// Every `/v2/` request needs credentials (otherwise only private upstreams do).
    public let required: Bool
    /// Clients were verified by their certificate during the TLS handshake.
    public let mutualTLS: Bool
    /// Whether there are users who may present credentials.
    public var hasUsers: Bool { !users.isEmpty }
    /// Checked instead of a real hash for unknown users: the same cost as the real ones.
    let decoyHash: String
    private let verifier: PasswordVerifier
    private let state = Mutex(State())
    /// How long an outcome is remembered.
    static let memory: Duration = .seconds(300)
    /// Failed verifications an address may cause per ``failureWindow`` before it is throttled.
    let failuresPerAddress: Int
    static let failureWindow: Duration = .seconds(60)
    static let rememberedHeaders = 10_000

    private struct State {
        var outcomes: [String: (outcome: Outcome, until: ContinuousClock.Instant)] = [:]
        var inFlight: [String: [CheckedContinuation<Outcome, Never>]] = [:]
        var failures: [String: (count: Int, since: ContinuousClock.Instant)] = [:]
    }

    /// Users who alone may read the operator's endpoints (`auth.admins`); empty: they are open.
    public let admins: Set<String>

    public init(
        users: [String: String], required: Bool, mutualTLS: Bool, admins: Set<String> = [], failuresPerAddress: Int = 10,
        verifiers: Int = 2
    ) {
        self.admins = admins
        // htpasswd -B writes $2y$, which is bcrypt's $2b$.
        self.users = users.mapValues { $0.hasPrefix("$2y$") ? "$2b$" + $0.dropFirst(4) : $0 }
        self.required = required
        self.mutualTLS = mutualTLS
        self.failuresPerAddress = failuresPerAddress
        self.verifier = PasswordVerifier(workers: verifiers)
        let cost = self.users.values.compactMap(Self.cost(of:)).max() ?? 10
        self.decoyHash = Bcrypt.hash(UUID().uuidString, cost: UInt8(cost))
    }

    /// Whether a request without credentials may read a repository of an upstream that is
    /// `private` or not: the one rule the authentication middleware and the warm path apply.
    /// With client certificates every connection proved itself in the handshake.
    public func admitsAnonymous(toPrivate isPrivate: Bool) -> Bool {
        mutualTLS || (!required && !isPrivate)
    }

    /// The outcome for a request's `Authorization` header from `address`.
    public func authenticate(_ authorization: String?, from address: String? = nil) async -> Outcome {
        guard let authorization, authorization.lowercased().hasPrefix("basic ") else {
            return mutualTLS ? .user("client-certificate") : .anonymous
        }
        guard let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return .invalid }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        // containers/image answers a Basic challenge with empty credentials when it has none.
        if user.isEmpty, password.isEmpty { return mutualTLS ? .user("client-certificate") : .anonymous }

        let key = Digest.sha256(Data(authorization.utf8)).description
        let addressKey = address ?? ""
        enum Next {
            case answer(Outcome)
            case verify
            case wait
        }
        let now = ContinuousClock.now
        let next: Next = state.withLock { state in
            if let known = state.outcomes[key], known.until > now { return .answer(known.outcome) }
            if let failures = state.failures[addressKey], now - failures.since < Self.failureWindow,
                failures.count >= failuresPerAddress
            {
                return .answer(.throttled)
            }
            if state.inFlight[key] != nil { return .wait }
            state.inFlight[key] = []
            return .verify
        }
        switch next {
        case .answer(let outcome): return outcome
        case .wait:
            return await withCheckedContinuation { continuation in
                let answered: Outcome? = state.withLock { state in
                    if state.inFlight[key] != nil {
                        state.inFlight[key]!.append(continuation)
                        return nil
                    }
                    return state.outcomes[key]?.outcome ?? .throttled
                }
                if let answered { continuation.resume(returning: answered) }
            }
        case .verify:
            break
        }
        let hash = users[user] ?? decoyHash
        let verified = await verifier.verify(password, hash: hash)
        let outcome: Outcome
        switch verified {
        case nil: outcome = .throttled
        case true?: outcome = users[user] != nil ? .user(user) : .invalid
        case false?: outcome = .invalid
        }
        let waiters = state.withLock { state in
            let waiters = state.inFlight.removeValue(forKey: key) ?? []
            // An overloaded verifier decided nothing about the credentials: not remembered.
            guard outcome != .throttled else { return waiters }
            if state.outcomes.count >= Self.rememberedHeaders {
                state.outcomes = state.outcomes.filter { $0.value.until > now }
                if state.outcomes.count >= Self.rememberedHeaders { state.outcomes = [:] }
            }
            state.outcomes[key] = (outcome, ContinuousClock.now + Self.memory)
            if outcome == .invalid {
                if state.failures.count >= Self.rememberedHeaders {
                    state.failures = state.failures.filter { now - $0.value.since < Self.failureWindow }
                }
                var failures = state.failures[addressKey] ?? (0, now)
                if now - failures.since >= Self.failureWindow { failures = (0, now) }
                failures.count += 1
                state.failures[addressKey] = failures
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: outcome) }
        return outcome
    }

    /// The cost of a bcrypt hash (`$2b$10$...` is 10).
    static func cost(of hash: String) -> Int? {
        let parts = hash.split(separator: "$")
        guard parts.count >= 2, let cost = Int(parts[1]), (4...31).contains(cost) else { return nil }
        return cost
    }
}

/// Runs bcrypt verifications on threads of their own, at most `workers` at once, with at most
/// `queueLimit` waiting; beyond that a verification is refused (nil) rather than queued.
final class PasswordVerifier: Sendable {
    private let queue = DispatchQueue(label: "archway.password-verification", attributes: .concurrent)
    private let workers: Int
    private let queueLimit: Int
    private let state = Mutex(State())

    private struct Job {
        let password: String
        let hash: String
        let continuation: CheckedContinuation<Bool?, Never>
    }

    private struct State {
        var running = 0
        var waiting: [Job] = []
    }

    init(workers: Int, queueLimit: Int = 64) {
        self.workers = max(1, workers)
        self.queueLimit = queueLimit
    }

    func verify(_ password: String, hash: String) async -> Bool? {
        await withCheckedContinuation { continuation in
            let job = Job(password: password, hash: hash, continuation: continuation)
            let start: Bool? = state.withLock { state in
                if state.running < workers {
                    state.running += 1
                    return true
                }
                guard state.waiting.count < queueLimit else { return nil }
                state.waiting.append(job)
                return false
            }
            switch start {
            case true?: run(job)
            case false?: break
            case nil: continuation.resume(returning: nil)
            }
        }
    }

    private func run(_ job: Job) {
        queue.async {
            job.continuation.resume(returning: Bcrypt.verify(job.password, hash: job.hash))
            let next: Job? = self.state.withLock { state in
                guard !state.waiting.isEmpty else {
                    state.running -= 1
                    return nil
                }
                return state.waiting.removeFirst()
            }
            if let next { self.run(next) }
        }
    }
}
