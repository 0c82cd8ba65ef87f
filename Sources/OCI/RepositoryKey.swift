/// A repository on an upstream registry: what a request reads, and how the cache, policies and
/// logs name it (`docker.io/library/nginx`). Built once, where a request is routed; its text
/// form is only for policies' globs and for people.
public struct RepositoryKey: Sendable, Hashable, CustomStringConvertible {
    /// The registry host clients know the upstream by, e.g. `docker.io`.
    public var upstream: String
    /// The repository on that upstream (`library/` included on Docker Hub).
    public var repository: RepositoryName

    public init(upstream: String, repository: RepositoryName) {
        self.upstream = upstream
        self.repository = repository
    }

    /// `<upstream>/<repository>`.
    public var description: String { "\(upstream)/\(repository)" }

    /// Reads ``description`` back (an upstream's name has no `/`); nil when it is not one.
    public init?(parsing text: String) {
        guard let slash = text.firstIndex(of: "/"), slash != text.startIndex,
            let repository = try? RepositoryName(String(text[text.index(after: slash)...]))
        else { return nil }
        self.init(upstream: String(text[..<slash]), repository: repository)
    }
}
