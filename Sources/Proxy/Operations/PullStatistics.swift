import Foundation
import OCI
import Synchronization

/// Which repositories and tags clients pull, since the process started: counts and the last
/// pull, for an operator's page. Bounded: 10 000 repositories, 64 tags each; beyond, the least
/// recently pulled are forgotten.
public final class PullStatistics: Sendable {
    public struct Tag: Sendable, Hashable, Codable {
        public var name: String
        public var digest: Digest
        public var pulls: Int
        public var lastPull: Date
    }

    public struct Repository: Sendable, Hashable {
        public var key: RepositoryKey
        public var name: String { key.description }
        public var pulls: Int
        public var lastPull: Date
        public var tags: [String: Tag]
    }

    static let repositoriesKept = 10_000
    static let tagsKept = 64
    /// Keyed by the repository's key, not its text: the text is made only when the page asks.
    private let repositories = Mutex([RepositoryKey: Repository]())

    public init() {}

    /// A manifest was served to a client: by tag (`tag` set) or by digest. On every manifest
    /// answer, so the entries are changed in place (no copy of a repository's tags).
    func pulled(_ repository: RepositoryKey, tag: String?, digest: Digest, at date: Date) {
        repositories.withLock { repositories in
            if repositories.count >= Self.repositoriesKept, repositories[repository] == nil {
                let oldest = repositories.values.sorted { $0.lastPull < $1.lastPull }.prefix(Self.repositoriesKept / 10)
                for entry in oldest { repositories[entry.key] = nil }
            }
            // One lookup of the repository and one of the tag, each changed in place: this runs
            // under the lock on every manifest answer, on every event loop.
            Self.count(
                &repositories[repository, default: Repository(key: repository, pulls: 0, lastPull: date, tags: [:])], tag: tag,
                digest: digest, at: date)
        }
    }

    private static func count(_ repository: inout Repository, tag: String?, digest: Digest, at date: Date) {
        repository.pulls += 1
        repository.lastPull = date
        guard let tag else { return }
        if repository.tags.count >= tagsKept, repository.tags[tag] == nil,
            let oldest = repository.tags.values.min(by: { $0.lastPull < $1.lastPull })
        {
            repository.tags[oldest.name] = nil
        }
        count(&repository.tags[tag, default: Tag(name: tag, digest: digest, pulls: 0, lastPull: date)], digest: digest, at: date)
    }

    private static func count(_ tag: inout Tag, digest: Digest, at date: Date) {
        tag.pulls += 1
        tag.lastPull = date
        tag.digest = digest
    }

    /// The `count` most pulled repositories, most pulled first.
    public func mostPulled(_ count: Int) -> [Repository] {
        repositories.withLock { Array($0.values) }
            .sorted { ($0.pulls, $0.lastPull) > ($1.pulls, $1.lastPull) }
            .prefix(count).map { $0 }
    }
}
