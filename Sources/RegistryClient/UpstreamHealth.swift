import Foundation
import OCI
import Synchronization

/// How an upstream has been answering, for an operator's page: whether the last exchange got
/// an answer, the last failure, latency, and Docker Hub's remaining pull allowance. Updated by
/// every exchange; reading it costs a lock.
public final class UpstreamHealth: Sendable {
    public struct Snapshot: Sendable, Hashable, Codable {
        /// Whether the last exchange got an HTTP answer below 500; nil before the first.
        public var reachable: Bool?
        public var lastAnswerAt: Date?
        public var lastError: String?
        public var lastErrorAt: Date?
        /// The last exchange's time to its answer's head, and a moving average (1/8 weight).
        public var lastLatencyMilliseconds: Double?
        public var averageLatencyMilliseconds: Double?
        /// Docker Hub's `ratelimit-remaining`, as last sent.
        public var rateLimitRemaining: Int?
        public var requests: Int = 0
        public var failures: Int = 0
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// An answer arrived, `status` after `latency`.
    func answered(status: Int, after latency: Duration, rateLimitRemaining: Int?, at date: Date = Date()) {
        let milliseconds = latency.totalSeconds * 1000
        state.withLock { state in
            state.requests += 1
            state.lastAnswerAt = date
            state.reachable = status < 500
            if status >= 500 {
                state.failures += 1
                state.lastError = "HTTP \(status)"
                state.lastErrorAt = date
            }
            state.lastLatencyMilliseconds = milliseconds
            state.averageLatencyMilliseconds = state.averageLatencyMilliseconds.map { $0 + (milliseconds - $0) / 8 } ?? milliseconds
            if let rateLimitRemaining { state.rateLimitRemaining = rateLimitRemaining }
        }
    }

    /// No answer: the connection failed or timed out.
    func failed(_ message: String, at date: Date = Date()) {
        state.withLock { state in
            state.requests += 1
            state.failures += 1
            state.reachable = false
            state.lastError = message
            state.lastErrorAt = date
        }
    }
}
