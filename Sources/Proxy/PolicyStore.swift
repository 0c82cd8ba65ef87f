import Policies
import Synchronization

/// The policies in force, replaced whole on reload: a request sees one set or the other, never
/// a mix.
public final class PolicyStore: Sendable {
    private let policies: Mutex<PolicySet>

    public init(_ policies: PolicySet) {
        self.policies = Mutex(policies)
    }

    public var current: PolicySet { policies.withLock { $0 } }

    public func replace(with policies: PolicySet) {
        self.policies.withLock { $0 = policies }
    }
}
