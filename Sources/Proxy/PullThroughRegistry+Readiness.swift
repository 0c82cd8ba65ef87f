import Cache
import CoreMetrics
import Foundation

extension PullThroughRegistry {
    /// What keeps the mirror from serving: the storage not writable, the catalog not readable.
    /// Empty when ready.
    public func readinessProblems() async -> [String] {
        var problems = await store.problems()
        do {
            _ = try await catalog.totalSize()
        } catch {
            problems.append("catalog is not usable: \(error)")
        }
        return problems
    }
}

extension PullThroughRegistry {
    /// Sets the gauges that are read, not counted: downloads and their followers, the cache size.
    public func recordGauges() async {
        Gauge(label: "archway_fills_in_flight").record(store.fillsInFlight)
        Gauge(label: "archway_fill_followers").record(store.followers)
        if let size = try? await catalog.totalSize() {
            Gauge(label: "archway_cache_size_bytes").record(size)
        }
    }
}

extension PullThroughRegistry {
    /// Downloads running now.
    public var fillsInFlight: Int { store.fillsInFlight }
}
