import Foundation
import Synchronization

/// What the cache did minute by minute over the last day: hits, misses and stale answers, bytes
/// sent to clients and fetched from upstreams. 1 440 buckets, a lock per update.
public final class TrafficHistory: Sendable {
    public struct Bucket: Sendable, Hashable, Codable {
        /// Minutes since 1970.
        public var minute: Int
        public var hits = 0
        public var misses = 0
        public var stale = 0
        public var bytesServed: Int64 = 0
        public var bytesFetched: Int64 = 0

        public var answers: Int { hits + misses + stale }
    }

    static let minutes = 1440
    private let buckets = Mutex([Bucket](repeating: Bucket(minute: -1), count: TrafficHistory.minutes))
    let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date = Date.init) {
        self.now = now
    }

    private func update(_ change: (inout Bucket) -> Void) {
        let minute = Int(now().timeIntervalSince1970 / 60)
        buckets.withLock { buckets in
            let slot = minute % Self.minutes
            if buckets[slot].minute != minute { buckets[slot] = Bucket(minute: minute) }
            change(&buckets[slot])
        }
    }

    func count(_ status: CacheStatus) {
        update { bucket in
            switch status {
            case .hit: bucket.hits += 1
            case .miss: bucket.misses += 1
            case .stale: bucket.stale += 1
            }
        }
    }

    func served(_ bytes: Int64) { update { $0.bytesServed += bytes } }
    func fetched(_ bytes: Int64) { update { $0.bytesFetched += bytes } }

    /// The last `count` minutes, oldest first (minutes without traffic included, empty).
    public func lastMinutes(_ count: Int) -> [Bucket] {
        let minute = Int(now().timeIntervalSince1970 / 60)
        let count = min(count, Self.minutes)
        return buckets.withLock { buckets in
            ((minute - count + 1)...minute).map { wanted in
                let bucket = buckets[((wanted % Self.minutes) + Self.minutes) % Self.minutes]
                return bucket.minute == wanted ? bucket : Bucket(minute: wanted)
            }
        }
    }
}

extension Array where Element == TrafficHistory.Bucket {
    /// The sum of these minutes.
    public var total: TrafficHistory.Bucket {
        reduce(into: TrafficHistory.Bucket(minute: last?.minute ?? 0)) { sum, bucket in
            sum.hits += bucket.hits
            sum.misses += bucket.misses
            sum.stale += bucket.stale
            sum.bytesServed += bucket.bytesServed
            sum.bytesFetched += bucket.bytesFetched
        }
    }
}
