import Foundation
import OCI
import Synchronization

/// The last synthesis of each tag a rule rewrote: its index, each child's platform and source,
/// and its warnings (an excluded member and why). Bounded to 1 000 tags; beyond, the oldest
/// are forgotten.
public final class SynthesisLog: Sendable {
    public struct Entry: Sendable, Hashable, Codable {
        public struct Child: Sendable, Hashable, Codable {
            public var platform: String
            public var digest: Digest
            public var source: String
        }

        public var rule: String
        public var repository: String
        public var tag: String
        public var digest: Digest?
        public var children: [Child]
        public var warnings: [String]
        public var at: Date
    }

    static let kept = 1000
    private let entries = Mutex([String: Entry]())

    public init() {}

    func record(_ report: SynthesisReport, repository: RepositoryKey, tag: String, at date: Date) {
        let entry = Entry(
            rule: report.rule, repository: repository.description, tag: tag, digest: report.index?.digest,
            children: report.children.map {
                Entry.Child(platform: $0.platform.description, digest: $0.descriptor.digest, source: $0.source)
            },
            warnings: report.warnings, at: date)
        entries.withLock { entries in
            let key = "\(report.rule)\u{0}\(repository)\u{0}\(tag)"
            if entries[key] == nil, entries.count >= Self.kept, let oldest = entries.min(by: { $0.value.at < $1.value.at }) {
                entries[oldest.key] = nil
            }
            entries[key] = entry
        }
    }

    /// The rule's synthesized tags, most recent first.
    public func entries(rule: String) -> [Entry] {
        entries.withLock { $0.values.filter { $0.rule == rule } }.sorted { $0.at > $1.at }
    }
}
