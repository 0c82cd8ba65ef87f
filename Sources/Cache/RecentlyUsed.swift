import Synchronization

/// A bounded in-memory map that keeps what was used recently, for answers read far more often
/// than they change (tag records, manifests).
///
/// Two generations approximate least-recently-used at constant cost: entries go into the young
/// generation; a hit in the old one moves the entry back to the young one; when the young
/// generation's cost passes half the budget it becomes the old one, and the previous old
/// generation is dropped whole. So everything used within the last half-budget of insertions
/// stays, and the total cost stays under the budget (plus one entry).
public final class RecentlyUsed<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Generations: ~Copyable {
        var young: [Key: Value] = [:]
        var old: [Key: Value] = [:]
        var youngCost = 0
    }

    private let generations = Mutex(Generations())
    private let budget: Int
    private let cost: @Sendable (Value) -> Int

    /// A map whose entries cost `cost` each (1 by default: `budget` counts entries).
    public init(budget: Int, cost: @escaping @Sendable (Value) -> Int = { _ in 1 }) {
        self.budget = budget
        self.cost = cost
    }

    public func value(for key: Key) -> Value? {
        generations.withLock { generations in
            if let value = generations.young[key] { return value }
            guard let value = generations.old.removeValue(forKey: key) else { return nil }
            insert(value, for: key, into: &generations)
            return value
        }
    }

    public func set(_ value: Value, for key: Key) {
        generations.withLock { generations in
            if let previous = generations.young.removeValue(forKey: key) { generations.youngCost -= cost(previous) }
            generations.old[key] = nil
            insert(value, for: key, into: &generations)
        }
    }

    /// Changes an entry in place, when there is one.
    public func update(_ key: Key, _ change: (inout Value) -> Void) {
        generations.withLock { generations in
            if var value = generations.young[key] {
                change(&value)
                generations.young[key] = value
            } else if var value = generations.old[key] {
                change(&value)
                generations.old[key] = value
            }
        }
    }

    public func remove(_ key: Key) {
        generations.withLock { generations in
            if let value = generations.young.removeValue(forKey: key) { generations.youngCost -= cost(value) }
            generations.old[key] = nil
        }
    }

    /// Removes every entry whose value matches (a scan: for rare events such as eviction).
    public func removeAll(where matches: (Value) -> Bool) {
        generations.withLock { generations in
            for (key, value) in generations.young where matches(value) {
                generations.young[key] = nil
                generations.youngCost -= cost(value)
            }
            generations.old = generations.old.filter { !matches($0.value) }
        }
    }

    private func insert(_ value: Value, for key: Key, into generations: inout Generations) {
        let added = cost(value)
        guard added <= budget / 2 else { return }  // would push out everything else
        generations.young[key] = value
        generations.youngCost += added
        if generations.youngCost > budget / 2 {
            generations.old = generations.young
            generations.young = [:]
            generations.youngCost = 0
        }
    }
}
