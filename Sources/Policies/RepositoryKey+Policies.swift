import OCI

// Policies match repositories by their text, `<upstream>/<repository>`, with globs; these take
// the typed key the read path carries.

extension PolicySet {
    /// What to do for a tag of `repository`.
    public func decision(repository: RepositoryKey, tag: Tag) -> PolicyDecision {
        decision(repository: repository.description, tag: tag)
    }

    /// The rules whose repository globs match `repository`.
    public func rules(for repository: RepositoryKey) -> [PolicyRule] {
        rules(for: repository.description)
    }
}

extension PolicyRule {
    /// Whether the rule rewrites this tag of `repository`.
    public func applies(to repository: RepositoryKey, tag: Tag) -> Bool {
        applies(to: repository.description, tag: tag)
    }
}
