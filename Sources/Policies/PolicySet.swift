import Foundation
import OCI

/// What to do with a pull by tag. Policies *return* decisions; they never throw for a pull.
public enum PolicyDecision: Sendable, Hashable {
    /// Serve the upstream's answer as it is.
    case passThrough
    /// Answer with an index synthesized from the rule's members.
    case synthesize(PolicyRule)
}

/// The rules of a policies folder, in file-name order, first match wins.
public struct PolicySet: Sendable, Hashable {
    public static let empty = PolicySet(rules: [])

    public let rules: [PolicyRule]

    public init(rules: [PolicyRule]) {
        self.rules = rules
    }

    /// The decision for a pull of `tag` from the repository key `repository`
    /// (`docker.io/library/nginx`). Pulls by digest are never rewritten, so they never get here.
    public func decision(repository: String, tag: Tag) -> PolicyDecision {
        rules.first { $0.applies(to: repository, tag: tag) }.map(PolicyDecision.synthesize) ?? .passThrough
    }

    /// The rules that can apply to a repository, whatever the tag.
    public func rules(for repository: String) -> [PolicyRule] {
        rules.filter { $0.repository.matches(repository) }
    }
}
