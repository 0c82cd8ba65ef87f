import OCI

/// What to do with a pull by tag. Policies *return* decisions; they never throw for a pull.
public enum PolicyDecision: Sendable, Hashable {
    /// Serve the upstream's answer as it is.
    case passThrough
}

/// The rules loaded from the policies folder. Rule loading arrives with the rewriter; until then
/// the set is empty and every pull passes through.
public struct PolicySet: Sendable {
    public static let empty = PolicySet()

    public func decision(repository: String, tag: Tag) -> PolicyDecision {
        .passThrough
    }
}
