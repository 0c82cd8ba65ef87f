import Foundation
import HummingbirdBcrypt
import Testing

@testable import ProxyServer

@Suite struct ClientAuthenticationTests {
    static let hash = Bcrypt.hash("s3cret", cost: 4)

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func basicCredentialsAreCheckedAgainstBcrypt() async {
        let authentication = ClientAuthentication(
            users: ["robot": Self.hash, "htpasswd": "$2y$" + Self.hash.dropFirst(4)], required: false, mutualTLS: false
        )
        #expect(await authentication.authenticate(nil) == .anonymous)
        #expect(await authentication.authenticate("Bearer abc") == .anonymous)
        #expect(await authentication.authenticate(Self.basic("robot", "s3cret")) == .user("robot"))
        #expect(await authentication.authenticate(Self.basic("robot", "s3cret")) == .user("robot"), "remembered")
        #expect(await authentication.authenticate(Self.basic("htpasswd", "s3cret")) == .user("htpasswd"), "$2y$ as htpasswd -B writes it")
        #expect(await authentication.authenticate(Self.basic("robot", "wrong")) == .invalid)
        #expect(await authentication.authenticate(Self.basic("nobody", "s3cret")) == .invalid)
        #expect(await authentication.authenticate("Basic !!!not-base64") == .invalid)
        #expect(await authentication.authenticate("Basic " + Data("no-colon".utf8).base64EncodedString()) == .invalid)
        #expect(await authentication.authenticate(Self.basic("", "")) == .anonymous, "what containers/image sends without credentials")
    }

    @Test func aVerifiedClientCertificateIsAuthentication() async {
        let authentication = ClientAuthentication(users: [:], required: true, mutualTLS: true)
        #expect(await authentication.authenticate(nil) == .user("client-certificate"))
    }

    @Test func failuresAreRememberedAndThrottledPerAddress() async {
        let authentication = ClientAuthentication(users: ["robot": Self.hash], required: false, mutualTLS: false, failuresPerAddress: 3)
        for attempt in 0..<3 {
            #expect(await authentication.authenticate(Self.basic("robot", "wrong \(attempt)"), from: "10.0.0.1") == .invalid)
        }
        // A fourth failure from the same address is not even verified; another address is.
        #expect(await authentication.authenticate(Self.basic("robot", "wrong 4"), from: "10.0.0.1") == .throttled)
        #expect(await authentication.authenticate(Self.basic("robot", "wrong 4"), from: "10.0.0.2") == .invalid)
        // A header already judged keeps its outcome: a known failure stays a failure, and a
        // remembered success still passes from the throttled address.
        #expect(await authentication.authenticate(Self.basic("robot", "wrong 0"), from: "10.0.0.1") == .invalid)
        #expect(await authentication.authenticate(Self.basic("robot", "s3cret"), from: "10.0.0.2") == .user("robot"))
        #expect(await authentication.authenticate(Self.basic("robot", "s3cret"), from: "10.0.0.1") == .user("robot"))
    }

    @Test func concurrentIdenticalHeadersShareOneVerification() async {
        let authentication = ClientAuthentication(users: ["robot": Self.hash], required: false, mutualTLS: false, failuresPerAddress: 2)
        // 40 requests with the same wrong password at once count as one failed attempt.
        let outcomes = await withTaskGroup(of: ClientAuthentication.Outcome.self) { group in
            for _ in 0..<40 { group.addTask { await authentication.authenticate(Self.basic("robot", "nope"), from: "10.0.0.3") } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { $0 == .invalid })
        #expect(await authentication.authenticate(Self.basic("robot", "other"), from: "10.0.0.3") == .invalid, "one failure so far")
    }

    @Test func unknownUsersCostAsMuchAsKnownOnes() {
        #expect(ClientAuthentication.cost(of: Self.hash) == 4)
        #expect(ClientAuthentication.cost(of: "$2b$12$abcdefghijklmnopqrstuv") == 12)
        #expect(ClientAuthentication.cost(of: "plain") == nil)
        let authentication = ClientAuthentication(users: ["robot": Self.hash], required: false, mutualTLS: false)
        #expect(ClientAuthentication.cost(of: authentication.decoyHash) == 4, "an unknown user is checked at the users' cost")
    }
}

@Suite struct StreamingBudgetTests {
    @Test func permitsAreCountedUntilReleased() {
        let budget = StreamingBudget(limit: 2)
        var first = budget.acquire()
        let second = budget.acquire()
        #expect(first != nil && second != nil)
        #expect(budget.acquire() == nil, "the budget is spent")
        first = nil
        #expect(budget.acquire() != nil, "a released permit is available again")
        _ = (first, second)
    }

    @Test func largeChunksGoToResponsesWhileTheirAllowanceLasts() {
        let cost = 2 * (StreamingBudget.largeChunkSize - (128 << 10))
        let budget = StreamingBudget(limit: 10, largeChunkAllowance: 3 * cost)
        var permits = (0..<5).map { _ in budget.acquire()! }
        #expect(permits.map(\.chunkSize) == [1 << 20, 1 << 20, 1 << 20, 128 << 10, 128 << 10])
        permits.removeFirst()
        #expect(budget.acquire()?.chunkSize == 1 << 20, "a large permit's allowance comes back with it")
        #expect(StreamingBudget(limit: 10, largeChunkAllowance: 0).acquire()?.chunkSize == 128 << 10)
        _ = permits
    }
}
