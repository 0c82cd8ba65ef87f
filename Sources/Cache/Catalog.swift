import Foundation
import GRDB
import OCI
import Synchronization

/// What Archway knows about its cache, in SQLite (WAL): which tag answered which digest for
/// which `Accept` set, what content is stored (kind, media type, size, last access), and where
/// each digest can be fetched from (upstream + repository).
///
/// Access times are noted in memory and written in batches (``flushAccesses()``), so a cache
/// hit costs no SQLite write; recently used tag answers are kept in memory too (written
/// through), so a warm tag costs no SQLite read.
public final class Catalog: Sendable {
    let database: any DatabaseWriter
    private let pendingAccesses = Mutex<[Digest: Date]>([:])
    private let recentTags = RecentlyUsed<TagKey, TagRecord>(budget: 20_000)

    /// Opens (creating and migrating) the catalog at `path`.
    public convenience init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        try self.init(database: try DatabasePool(path: path, configuration: configuration))
    }

    /// A catalog in memory, for tests.
    public static func inMemory() throws -> Catalog {
        try Catalog(database: try DatabaseQueue())
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
                        \(TagRecord.selection) WHERE upstream = ? AND repository = ? AND tag = ? AND accept = ?
                        """,
                    arguments: [key.upstream, key.repository, key.tag, key.accept]
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
                    \(TagRecord.selection) WHERE upstream = ? AND repository = ? AND tag = ? ORDER BY validated_at DESC
                    """,
                arguments: [upstream, repository, tag]
            ).compactMap(TagRecord.init(row:))
        }
    }

    /// Records a manifest stored in the blob store, where it came from, and the tag that
    /// answered it (when it was asked by tag).
    public func recordManifest(_ descriptor: Descriptor, upstream: String, repository: String, tag: TagKey?, at date: Date) async throws {
        try await database.write { db in
            try Self.upsertContent(
                db, descriptor.digest, kind: .manifest, mediaType: descriptor.mediaType.rawValue, size: descriptor.size, at: date)
            try Self.insertOrigin(db, descriptor.digest, upstream: upstream, repository: repository)
            if let tag {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO tag (upstream, repository, tag, accept, digest, validated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        tag.upstream, tag.repository, tag.tag, tag.accept, descriptor.digest.description, date.timeIntervalSince1970,
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
                sql: "UPDATE tag SET validated_at = ? WHERE upstream = ? AND repository = ? AND tag = ? AND accept = ?",
                arguments: [date.timeIntervalSince1970, key.upstream, key.repository, key.tag, key.accept]
            )
        }
        recentTags.update(key) { $0.validatedAt = date }
    }

    /// Forgets a tag (the upstream no longer has it).
    public func removeTag(_ key: TagKey) async throws {
        try await database.write { db in
            try db.execute(
                sql: "DELETE FROM tag WHERE upstream = ? AND repository = ? AND tag = ? AND accept = ?",
                arguments: [key.upstream, key.repository, key.tag, key.accept]
            )
        }
        recentTags.remove(key)
    }

    // MARK: - Content

    /// Records a blob stored in the blob store and where it came from.
    public func recordBlob(_ digest: Digest, size: Int64, upstream: String, repository: String, at date: Date) async throws {
        try await database.write { db in
            try Self.upsertContent(db, digest, kind: .blob, mediaType: nil, size: size, at: date)
            try Self.insertOrigin(db, digest, upstream: upstream, repository: repository)
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

    /// Where content can be fetched from: (upstream, repository) pairs, first recorded first.
    public func origins(_ digest: Digest) async throws -> [Origin] {
        try await database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT upstream, repository FROM source WHERE digest = ? ORDER BY rowid", arguments: [digest.description]
            )
            .map { Origin(upstream: $0[0], repository: $0[1]) }
        }
    }

    /// Records where content named by a manifest can be fetched, before it is ever stored.
    public func recordOrigins(_ digests: [Digest], upstream: String, repository: String) async throws {
        guard !digests.isEmpty else { return }
        try await database.write { db in
            for digest in digests {
                try Self.insertOrigin(db, digest, upstream: upstream, repository: repository)
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

    /// Forgets content and the tags that named it (where it can be fetched is kept).
    public func remove(_ digest: Digest) async throws {
        _ = try await database.write { db in
            try db.execute(sql: "DELETE FROM content WHERE digest = ?", arguments: [digest.description])
        }
        recentTags.removeAll { $0.descriptor.digest == digest }
    }

    // MARK: - Access times

    /// Notes that content was served; written with the next ``flushAccesses()``.
    public func noteAccess(_ digest: Digest, at date: Date) {
        pendingAccesses.withLock { $0[digest] = date }
    }

    /// Writes the noted access times in one transaction.
    public func flushAccesses() async throws {
        let accesses = pendingAccesses.withLock { pending in
            defer { pending = [:] }
            return pending
        }
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

    private static func insertOrigin(_ db: Database, _ digest: Digest, upstream: String, repository: String) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO source (digest, upstream, repository) VALUES (?, ?, ?)",
            arguments: [digest.description, upstream, repository]
        )
    }
}
