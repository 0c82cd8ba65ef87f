import Foundation
import OCI

/// One rule of a policy file: pulls by tag of matching repositories are answered with an index
/// synthesized from the members.
public struct PolicyRule: Sendable, Hashable {
    /// Used in logs and metrics; defaults to `<file>#<index>`.
    public var name: String
    /// Glob over repository keys (`docker.io/thedoh/lisa19`, `docker.io/**`).
    public var repository: Glob
    /// Globs over requested tags; the rule applies when any matches.
    public var tags: [Glob]
    public var members: [MemberTemplate]
    /// Where the rule is written, for messages.
    public var location: SourceLocation
    /// What a pull of a synthesized tag with no image for the client's stated platform gets
    /// (`mismatch:`); nil: the configuration's choice.
    public var mismatch: MismatchAction?

    public init(
        name: String, repository: Glob, tags: [Glob], members: [MemberTemplate], location: SourceLocation, mismatch: MismatchAction? = nil
    ) {
        self.name = name
        self.repository = repository
        self.tags = tags
        self.members = members
        self.location = location
        self.mismatch = mismatch
    }

    /// Stable across processes and replicas: what the rule says, hashed.
    public var fingerprint: String {
        let text =
            "\(repository)|\(tags.map(\.pattern))|" + members.map { "\($0.from)@\($0.platform?.description ?? "")" }.joined(separator: ",")
        return String(Digest.sha256(Data(text.utf8)).encoded.prefix(16))
    }

    public func applies(to repository: String, tag: Tag) -> Bool {
        self.repository.matches(repository) && tags.contains { $0.matches(tag.value) }
    }
}

/// A member of a rule: where one architecture's image lives, as a template.
public struct MemberTemplate: Sendable, Hashable {
    /// `{repository}:amd64-{tag}`, `docker.io/arm32v7/{name}:{tag}`, `{repository}-arm64` (tag
    /// defaults to `{tag}`), or a reference by digest.
    public var from: String
    /// The platform the member must have; checked against its image config.
    public var platform: Platform?
    public var location: SourceLocation

    public init(from: String, platform: Platform? = nil, location: SourceLocation) {
        self.from = from
        self.platform = platform
        self.location = location
    }

    public static let placeholders = ["repository", "registry", "path", "name", "tag"]

    /// The member for a requested repository and tag.
    public func expand(repository key: RepositoryKey, tag: Tag) -> MemberReference? {
        expand(registry: key.upstream, path: key.repository.value, tag: tag)
    }

    /// The member for a requested repository key written as text (`<registry>/<path>`) and tag.
    public func expand(repository key: String, tag: Tag) -> MemberReference? {
        let registry = String(key.prefix { $0 != "/" })
        return expand(registry: registry, path: String(key.dropFirst(registry.count + 1)), tag: tag)
    }

    private func expand(registry: String, path: String, tag: Tag) -> MemberReference? {
        let name = String(path.split(separator: "/").last ?? "")
        var text = from
        let values = [("repository", "\(registry)/\(path)"), ("registry", registry), ("path", path), ("name", name), ("tag", tag.value)]
        for (placeholder, value) in values {
            text = text.replacingOccurrences(of: "{\(placeholder)}", with: value)
        }
        return MemberReference(parsing: text, defaultTag: tag)
    }
}

/// An expanded member: an image on a configured upstream.
public struct MemberReference: Sendable, Hashable, CustomStringConvertible {
    /// The upstream host as configured (`docker.io`, `registry.internal:5000`).
    public var registry: String
    public var repository: RepositoryName
    public var reference: ManifestReference

    public init(registry: String, repository: RepositoryName, reference: ManifestReference) {
        self.registry = registry
        self.repository = repository
        self.reference = reference
    }

    /// Parses `registry/repository[:tag|@digest]`; the first component is always the registry.
    public init?(parsing text: String, defaultTag: Tag) {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let registry = String(text[..<slash])
        var rest = String(text[text.index(after: slash)...])
        var reference = ManifestReference.tag(defaultTag)
        if let at = rest.firstIndex(of: "@") {
            guard let digest = Digest(String(rest[rest.index(after: at)...])) else { return nil }
            reference = .digest(digest)
            rest = String(rest[..<at])
        } else if let colon = rest.lastIndex(of: ":") {
            guard let tag = try? Tag(String(rest[rest.index(after: colon)...])) else { return nil }
            reference = .tag(tag)
            rest = String(rest[..<colon])
        }
        guard !registry.isEmpty, let repository = try? RepositoryName(rest) else { return nil }
        self.registry = registry.lowercased()
        self.repository = repository
        self.reference = reference
    }

    public var description: String {
        switch reference {
        case .tag(let tag): "\(registry)/\(repository):\(tag)"
        case .digest(let digest): "\(registry)/\(repository)@\(digest)"
        }
    }
}

/// What a client whose platform is stated (header or User-Agent) gets when it asks by tag for an
/// image with nothing for its platform.
public enum MismatchAction: String, Sendable, Hashable {
    /// The image, with a `Warning: 299` header (and the event recorded).
    case warn
    /// `404 MANIFEST_UNKNOWN` naming the platforms there are and the rule that could fix it, so
    /// the pull fails at pull time and not with `exec format error` (the event is recorded too).
    case refuse
}
