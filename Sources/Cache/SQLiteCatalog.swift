import Foundation
import GRDB
import OCI
import Synchronization

/// The ``Catalog`` of one process, in SQLite (WAL): which tag answered which digest for
/// which `Accept` set, what content is stored (kind, media type, size, last access), and under
/// which repository names each digest may be served and where it is fetched for each (links).
///
/// Access times are noted in memory and written in batches (``flushAccesses()``), so a cache
/// hit costs no SQLite write; recently used tag answers are kept in memory too (written
/// through), so a warm tag costs no SQLite read.
public final class SQLiteCatalog: Catalog {
    let database: any DatabaseWriter
    private let pendingAccesses = PendingAccesses()
    private let recentTags = RecentlyUsed<TagKey, TagRecord>(budget: 20_000)

    /// Opens (creating and migrating) the catalog at `path`.
    public convenience init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        try self.init(database: try DatabasePool(path: path, configuration: configuration))
    }

    /// A catalog in memory, for tests.
    public static func inMemory() throws -> SQLiteCatalog {
        try SQLiteCatalog(database: try DatabaseQueue())
    }

    init(database: any DatabaseWriter) throws {
        self.database = database
        try Self.migrator.migrate(database)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE content (
                        digest TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL,
                        media_type TEXT,
                        size INTEGER NOT NULL,
                        stored_at REAL NOT NULL,
                        last_access REAL NOT NULL
                    );
                    CREATE INDEX content_by_access ON content(last_access);
                    CREATE TABLE origin (
                        digest TEXT NOT NULL REFERENCES content(digest) ON DELETE CASCADE,
                        upstream TEXT NOT NULL,
                        repository TEXT NOT NULL,
                        PRIMARY KEY (digest, upstream, repository)
                    );
                    CREATE TABLE tag (
                        upstream TEXT NOT NULL,
                        repository TEXT NOT NULL,
                        tag TEXT NOT NULL,
                        accept TEXT NOT NULL,
                        digest TEXT NOT NULL REFERENCES content(digest) ON DELETE CASCADE,
                        validated_at REAL NOT NULL,
                        PRIMARY KEY (upstream, repository, tag, accept)
                    );
                    CREATE INDEX tag_by_digest ON tag(digest);
                    """
            )
        }
        migrator.registerMigration("v2: sources of referenced content") { db in
            // Where a digest can be fetched is known before its content is stored (a synthesized
            // index names children in other repositories), so it no longer hangs off `content`.
            try db.execute(
                sql: """
                    CREATE TABLE source (
                        digest TEXT NOT NULL,
                        upstream TEXT NOT NULL,
                        repository TEXT NOT NULL,
                        PRIMARY KEY (digest, upstream, repository)
                    );
                    INSERT INTO source (digest, upstream, repository) SELECT digest, upstream, repository FROM origin;
                    DROP TABLE origin;
                    """
            )
        }
        migrator.registerMigration("v3: architecture mismatches") { db in
            try db.execute(
                sql: """
                    CREATE TABLE mismatch (
                        repository TEXT NOT NULL,
                        reference TEXT NOT NULL,
                        client_platform TEXT NOT NULL,
                        image_platforms TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        rule TEXT,
                        count INTEGER NOT NULL,
                        first_seen REAL NOT NULL,
                        last_seen REAL NOT NULL,
                        last_client TEXT,
                        user_agent TEXT,
                        PRIMARY KEY (repository, reference, client_platform)
                    );
                    CREATE INDEX mismatch_by_last_seen ON mismatch(last_seen);
                    """
            )
        }
        migrator.registerMigration("v4: links between names and content") { db in
            // Content is served under a name only through a link to that name whose source is known
            // to have it (`presence`: fetched from there, or confirmed there by a HEAD). A link says
            // where content served under a name is fetched: the name itself, or for a synthesized
            // index's children the member's repository. What the old `source` table knew was
            // trusted by the version that wrote it, and stays trusted.
            try db.execute(
                sql: """
                    CREATE TABLE link (
                        digest TEXT NOT NULL,
                        upstream TEXT NOT NULL,
                        repository TEXT NOT NULL,
                        source_upstream TEXT NOT NULL,
                        source_repository TEXT NOT NULL,
                        PRIMARY KEY (digest, upstream, repository, source_upstream, source_repository)
                    );
                    INSERT INTO link (digest, upstream, repository, source_upstream, source_repository)
                        SELECT digest, upstream, repository, upstream, repository FROM source;
                    CREATE TABLE presence (
                        digest TEXT NOT NULL,
                        upstream TEXT NOT NULL,
                        repository TEXT NOT NULL,
                        PRIMARY KEY (digest, upstream, repository)
                    );
                    INSERT INTO presence (digest, upstream, repository) SELECT digest, upstream, repository FROM source;
                    DROP TABLE source;
                    """
            )
        }
        migrator.registerMigration("v5: synthesized tags keyed by their rule") { db in
            // Synthesized indexes were keyed by a made-up Accept value, `archway:synthesized:<rule
            // fingerprint>`; the rule is a column of its own now, part of the key.
            try db.execute(
                sql: """
                    CREATE TABLE tag_v5 (
                        upstream TEXT NOT NULL,
                        repository TEXT NOT NULL,
                        tag TEXT NOT NULL,
                        accept TEXT NOT NULL,
                        rule TEXT NOT NULL DEFAULT '',
                        digest TEXT NOT NULL REFERENCES content(digest) ON DELETE CASCADE,
                        validated_at REAL NOT NULL,
                        PRIMARY KEY (upstream, repository, tag, accept, rule)
                    );
                    INSERT INTO tag_v5 (upstream, repository, tag, accept, rule, digest, validated_at)
                        SELECT upstream, repository, tag,
                            CASE WHEN accept LIKE 'archway:synthesized:%' THEN '' ELSE accept END,
                            CASE WHEN accept LIKE 'archway:synthesized:%' THEN substr(accept, 21) ELSE '' END,
                            digest, validated_at
                        FROM tag;
                    DROP TABLE tag;
                    ALTER TABLE tag_v5 RENAME TO tag;
                    CREATE INDEX tag_by_digest ON tag(digest);
                    """
            )
        }
        migrator.registerMigration("v6: what images' binaries are") { db in
            try db.execute(
                sql: """
                    CREATE TABLE binary_scan (
                        image TEXT PRIMARY KEY,
                        platform TEXT NOT NULL,
                        report TEXT NOT NULL,
                        scanned_at REAL NOT NULL
                    )
                    """
            )
        }
        return migrator
    }

    // MARK: - Tags

    /// The last answer for a tag asked with this `Accept` set.
    public func tag(_ key: TagKey) async throws -> TagRecord? {
        if let record = recentTags.value(for: key) { return record }
        let record: TagRecord? = try await database.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        \(TagRecord.selection) WHERE upstream = ? AND repository = ? AND tag = ? AND accept = ? AND rule = ?
                        """,
                    arguments: [key.upstream, key.repository, key.tag, key.accept, key.rule]
                )
            else { return nil }
            return TagRecord(row: row)
        }
        if let record { recentTags.set(record, for: key) }
        return record
    }

    /// Every cached answer for a tag, whatever `Accept` set asked it, most recently confirmed first.
    public func tagAnswers(upstream: String, repository: String, tag: String) async throws -> [TagRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    \(TagRecord.selection) WHERE upstream = ? AND repository = ? AND tag = ? AND rule = '' ORDER BY validated_at DESC
                    """,
                arguments: [upstream, repository, tag]
            ).compactMap(TagRecord.init(row:))
        }
    }

    /// Records a manifest stored in the blob store, where it came from, and the tag that
    /// answered it (when it was asked by tag).
    public func recordManifest(_ descriptor: Descriptor, from source: RepositoryKey, tag: TagKey?, at date: Date) async throws {
        try await database.write { db in
            try Self.upsertContent(
                db, descriptor.digest, kind: .manifest, mediaType: descriptor.mediaType.rawValue, size: descriptor.size, at: date)
            try Self.insertPresence(db, descriptor.digest, at: source)
            if let tag {
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO tag (upstream, repository, tag, accept, rule, digest, validated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        tag.upstream, tag.repository, tag.tag, tag.accept, tag.rule, descriptor.digest.description,
                        date.timeIntervalSince1970,
                    ]
                )
            }
        }
        if let tag { recentTags.set(TagRecord(descriptor: descriptor, validatedAt: date), for: tag) }
    }

    /// The upstream confirmed the tag still names the same digest.
    public func markValidated(_ key: TagKey, at date: Date) async throws {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE tag SET validated_at = ? WHERE upstream = ? AND repository = ? AND tag = ? AND accept = ? AND rule = ?",
                arguments: [date.timeIntervalSince1970, key.upstream, key.repository, key.tag, key.accept, key.rule]
            )
        }
        recentTags.update(key) { $0.validatedAt = date }
    }

    /// Forgets a tag (the upstream no longer has it).
    public func removeTag(_ key: TagKey) async throws {
        try await database.write { db in
            try db.execute(
                sql: "DELETE FROM tag WHERE upstream = ? AND repository = ? AND tag = ? AND accept = ? AND rule = ?",
                arguments: [key.upstream, key.repository, key.tag, key.accept, key.rule]
            )
        }
        recentTags.remove(key)
    }

    // MARK: - Content

    /// Records a blob stored in the blob store and where it came from (linked to that name).
    public func recordBlob(_ digest: Digest, size: Int64, from source: RepositoryKey, at date: Date) async throws {
        try await database.write { db in
            try Self.upsertContent(db, digest, kind: .blob, mediaType: nil, size: size, at: date)
            try Self.insertPresence(db, digest, at: source)
        }
    }

    /// Records content found in the store that the catalog did not know (a crash between the
    /// rename and the catalog write), so it is counted and can be evicted.
    public func adopt(_ digest: Digest, size: Int64, at date: Date) async throws {
        try await database.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO content (digest, kind, media_type, size, stored_at, last_access) VALUES (?, ?, NULL, ?, ?, ?)",
                arguments: [digest.description, ContentKind.blob.rawValue, size, date.timeIntervalSince1970, date.timeIntervalSince1970]
            )
        }
    }

    public func content(_ digest: Digest) async throws -> ContentRecord? {
        try await database.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT digest, kind, media_type, size, last_access FROM content WHERE digest = ?",
                arguments: [digest.description]
            ).flatMap(ContentRecord.init(row:))
        }
    }

    /// Every digest the catalog knows.
    public func allDigests() async throws -> Set<Digest> {
        try await database.read { db in
            Set(try String.fetchAll(db, sql: "SELECT digest FROM content").compactMap(Digest.init))
        }
    }

    /// Where content served under `name` is fetched: the sources of its links to that name,
    /// first recorded first, each with whether the source is known to have it. Empty when the
    /// digest was never linked to the name.
    public func sources(_ digest: Digest, under name: RepositoryKey) async throws -> [LinkedSource] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT link.source_upstream, link.source_repository, presence.digest IS NOT NULL FROM link
                    LEFT JOIN presence ON presence.digest = link.digest AND presence.upstream = link.source_upstream
                        AND presence.repository = link.source_repository
                    WHERE link.digest = ? AND link.upstream = ? AND link.repository = ? ORDER BY link.rowid
                    """,
                arguments: [digest.description, name.upstream, name.repository.value]
            )
            .compactMap { row in
                // A name stored by an earlier version that no longer parses is no source.
                guard let repository = try? RepositoryName(row[1] as String) else { return nil }
                return LinkedSource(origin: RepositoryKey(upstream: row[0], repository: repository), isConfirmed: row[2])
            }
        }
    }

    /// Records that `origin` has the content (it answered a HEAD for it); it is linked there too.
    public func confirm(_ digest: Digest, at origin: RepositoryKey) async throws {
        try await database.write { db in
            try Self.insertPresence(db, digest, at: origin)
        }
    }

    /// Links content to a name, to be fetched from `source` (the name itself when nil), before
    /// it is ever stored: what a manifest names, a synthesized index's children.
    public func link(_ digests: [Digest], under name: RepositoryKey, source: RepositoryKey?) async throws {
        guard !digests.isEmpty else { return }
        try await database.write { db in
            for digest in digests {
                try Self.insertLink(db, digest, name: name, source: source)
            }
        }
    }

    /// The bytes of all stored content.
    public func totalSize() async throws -> Int64 {
        try await database.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size), 0) FROM content") ?? 0 }
    }

    /// Content, least recently used first.
    public func leastRecentlyUsed(limit: Int) async throws -> [ContentRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT digest, kind, media_type, size, last_access FROM content ORDER BY last_access, rowid LIMIT ?",
                arguments: [limit]
            ).compactMap(ContentRecord.init(row:))
        }
    }

    /// Forgets content and the tags that named it (its links are kept).
    public func remove(_ digest: Digest) async throws {
        _ = try await database.write { db in
            try db.execute(sql: "DELETE FROM content WHERE digest = ?", arguments: [digest.description])
            try db.execute(sql: "DELETE FROM binary_scan WHERE image = ?", arguments: [digest.description])
        }
        recentTags.removeAll { $0.descriptor.digest == digest }
    }

    // MARK: - Access times

    /// Notes that content was served; written with the next ``flushAccesses()``.
    public func noteAccess(_ digest: Digest, at date: Date) {
        pendingAccesses.note(digest, at: date)
    }

    /// Writes the noted access times in one transaction.
    public func flushAccesses() async throws {
        let accesses = pendingAccesses.take()
        guard !accesses.isEmpty else { return }
        try await database.write { db in
            for (digest, date) in accesses {
                try db.execute(
                    sql: "UPDATE content SET last_access = MAX(last_access, ?) WHERE digest = ?",
                    arguments: [date.timeIntervalSince1970, digest.description]
                )
            }
        }
    }

    private static func upsertContent(_ db: Database, _ digest: Digest, kind: ContentKind, mediaType: String?, size: Int64, at date: Date)
        throws
    {
        try db.execute(
            sql: """
                INSERT INTO content (digest, kind, media_type, size, stored_at, last_access) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(digest) DO UPDATE SET last_access = MAX(last_access, excluded.last_access),
                    media_type = COALESCE(excluded.media_type, media_type), kind = excluded.kind
                """,
            arguments: [digest.description, kind.rawValue, mediaType, size, date.timeIntervalSince1970, date.timeIntervalSince1970]
        )
    }

    /// The content is at `origin` (fetched from there): linked to it, and known to be there.
    private static func insertPresence(_ db: Database, _ digest: Digest, at origin: RepositoryKey) throws {
        try insertLink(db, digest, name: origin, source: nil)
        try db.execute(
            sql: "INSERT OR IGNORE INTO presence (digest, upstream, repository) VALUES (?, ?, ?)",
            arguments: [digest.description, origin.upstream, origin.repository.value]
        )
    }

    private static func insertLink(_ db: Database, _ digest: Digest, name: RepositoryKey, source: RepositoryKey?) throws {
        let source = source ?? name
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO link (digest, upstream, repository, source_upstream, source_repository)
                VALUES (?, ?, ?, ?, ?)
                """,
            arguments: [digest.description, name.upstream, name.repository.value, source.upstream, source.repository.value]
        )
    }
}
