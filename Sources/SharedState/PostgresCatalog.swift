import Cache
import Foundation
import Logging
import OCI
import PostgresNIO
import Synchronization

/// The ``Catalog`` every replica shares, in PostgreSQL.
///
/// The same tables as ``SQLiteCatalog`` (tags per `Accept` set and rule, content, links and
/// presence, mismatches), the same contract: a content row is written after the bytes are
/// complete and verified, an insert that finds the row (another replica's) is success, access
/// times are noted in memory and written in batches. Recently used tag answers are kept in
/// memory too; a replica that changes or forgets a tag tells the others (`NOTIFY`), which drop
/// their copy, so a tag moved on one replica is seen by every replica at once, and by the tag
/// TTL at the latest while the notifications cannot reach it.
///
/// Every call is bounded (``callTimeout``): with the database unreachable a call fails promptly
/// with ``CatalogUnavailable`` (503 to a client), and answers kept in memory still serve.
public final class PostgresCatalog: Catalog {
    public var isShared: Bool { true }

    let client: PostgresClient
    let logger: Logger
    let callTimeout: Duration
    /// Identifies this process's notifications, which it ignores.
    let instance = UUID().uuidString
    static let channel = "archway_catalog"
    private let pendingAccesses = PendingAccesses()
    private let recentTags = RecentlyUsed<TagKey, TagRecord>(budget: 20_000)
    /// The migration running or done (``ensureSchema()``).
    let schema = Mutex<Task<Void, any Error>?>(nil)
    let schemaReady = Atomic<Bool>(false)

    public init(database: DatabaseAddress, callTimeout: Duration = .seconds(5), logger: Logger) {
        var configuration = PostgresClient.Configuration(
            host: database.host, port: database.port, username: database.user, password: database.password,
            database: database.database, tls: database.tls.postgres)
        configuration.options.connectTimeout = callTimeout
        configuration.options.maximumConnections = 16
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.callTimeout = callTimeout
        self.logger = logger
    }

    /// Runs the connection pool and the listener for other replicas' changes, until cancelled.
    /// Nothing works before this runs.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { await self.listenForChanges() }
        }
    }

    /// Drops tag answers kept in memory (all of them when `matching` is nil).
    func forgetRecentTags(matching: ((TagRecord) -> Bool)? = nil) {
        recentTags.removeAll { matching?($0) ?? true }
    }

    func forgetRecentTag(_ key: TagKey) {
        recentTags.remove(key)
    }

    // MARK: - Tags

    public func tag(_ key: TagKey) async throws -> TagRecord? {
        if let record = recentTags.value(for: key) { return record }
        let record = try await call("read a tag") { client in
            let rows = try await client.query(
                """
                SELECT tag.digest, tag.validated_at, content.media_type, content.size FROM tag
                JOIN content ON content.digest = tag.digest
                WHERE upstream = \(key.upstream) AND repository = \(key.repository) AND tag = \(key.tag)
                    AND accept = \(key.accept) AND rule = \(key.rule)
                """)
            for try await row in rows.decode((String, Double, String?, Int64).self) { return Self.tagRecord(row) }
            return nil
        }
        if let record { recentTags.set(record, for: key) }
        return record
    }

    public func tagAnswers(upstream: String, repository: String, tag: String) async throws -> [TagRecord] {
        try await call("read a tag's answers") { client in
            let rows = try await client.query(
                """
                SELECT tag.digest, tag.validated_at, content.media_type, content.size FROM tag
                JOIN content ON content.digest = tag.digest
                WHERE upstream = \(upstream) AND repository = \(repository) AND tag = \(tag) AND rule = ''
                ORDER BY validated_at DESC
                """)
            var records: [TagRecord] = []
            for try await row in rows.decode((String, Double, String?, Int64).self) {
                if let record = Self.tagRecord(row) { records.append(record) }
            }
            return records
        }
    }

    public func recordManifest(_ descriptor: Descriptor, from source: RepositoryKey, tag: TagKey?, at date: Date) async throws {
        try await transaction("record a manifest") { connection in
            try await Self.upsertContent(
                connection, descriptor.digest, kind: .manifest, mediaType: descriptor.mediaType.rawValue, size: descriptor.size, at: date,
                logger: self.logger)
            try await Self.insertPresence(connection, descriptor.digest, at: source, logger: self.logger)
            if let tag {
                let digest = descriptor.digest.description
                let validated = date.timeIntervalSince1970
                try await connection.query(
                    """
                    INSERT INTO tag (upstream, repository, tag, accept, rule, digest, validated_at)
                    VALUES (\(tag.upstream), \(tag.repository), \(tag.tag), \(tag.accept), \(tag.rule), \(digest), \(validated))
                    ON CONFLICT (upstream, repository, tag, accept, rule) DO UPDATE
                        SET digest = EXCLUDED.digest, validated_at = EXCLUDED.validated_at
                    """, logger: self.logger)
                try await self.notify(connection, .tag(tag))
            }
        }
        if let tag { recentTags.set(TagRecord(descriptor: descriptor, validatedAt: date), for: tag) }
    }

    public func markValidated(_ key: TagKey, at date: Date) async throws {
        let validated = date.timeIntervalSince1970
        try await execute("mark a tag validated") { client in
            try await client.query(
                """
                UPDATE tag SET validated_at = GREATEST(validated_at, \(validated))
                WHERE upstream = \(key.upstream) AND repository = \(key.repository) AND tag = \(key.tag)
                    AND accept = \(key.accept) AND rule = \(key.rule)
                """)
        }
        recentTags.update(key) { $0.validatedAt = max($0.validatedAt, date) }
    }

    public func removeTag(_ key: TagKey) async throws {
        try await transaction("forget a tag") { connection in
            try await connection.query(
                """
                DELETE FROM tag WHERE upstream = \(key.upstream) AND repository = \(key.repository) AND tag = \(key.tag)
                    AND accept = \(key.accept) AND rule = \(key.rule)
                """, logger: self.logger)
            try await self.notify(connection, .tag(key))
        }
        recentTags.remove(key)
    }

    // MARK: - Content

    public func recordBlob(_ digest: Digest, size: Int64, from source: RepositoryKey, at date: Date) async throws {
        try await transaction("record a blob") { connection in
            try await Self.upsertContent(connection, digest, kind: .blob, mediaType: nil, size: size, at: date, logger: self.logger)
            try await Self.insertPresence(connection, digest, at: source, logger: self.logger)
        }
    }

    public func adopt(_ digest: Digest, size: Int64, at date: Date) async throws {
        let (text, stamp) = (digest.description, date.timeIntervalSince1970)
        try await execute("adopt content") { client in
            try await client.query(
                """
                INSERT INTO content (digest, kind, media_type, size, stored_at, last_access)
                VALUES (\(text), 'blob', NULL, \(size), \(stamp), \(stamp)) ON CONFLICT (digest) DO NOTHING
                """)
        }
    }

    public func content(_ digest: Digest) async throws -> ContentRecord? {
        let text = digest.description
        return try await call("read content") { client in
            let rows = try await client.query(
                "SELECT digest, kind, media_type, size, last_access FROM content WHERE digest = \(text)")
            for try await row in rows.decode((String, String, String?, Int64, Double).self) { return Self.contentRecord(row) }
            return nil
        }
    }

    public func allDigests() async throws -> Set<Digest> {
        try await call("list content") { client in
            var digests: Set<Digest> = []
            for try await text in try await client.query("SELECT digest FROM content").decode(String.self) {
                if let digest = Digest(text) { digests.insert(digest) }
            }
            return digests
        }
    }

    public func totalSize() async throws -> Int64 {
        try await call("sum content") { client in
            for try await total in try await client.query("SELECT COALESCE(SUM(size), 0)::BIGINT FROM content").decode(Int64.self) {
                return total
            }
            return 0
        }
    }

    public func leastRecentlyUsed(limit: Int) async throws -> [ContentRecord] {
        try await call("list content by use") { client in
            let rows = try await client.query(
                "SELECT digest, kind, media_type, size, last_access FROM content ORDER BY last_access, id LIMIT \(limit)")
            var records: [ContentRecord] = []
            for try await row in rows.decode((String, String, String?, Int64, Double).self) {
                if let record = Self.contentRecord(row) { records.append(record) }
            }
            return records
        }
    }

    public func remove(_ digest: Digest) async throws {
        let text = digest.description
        try await transaction("forget content") { connection in
            try await connection.query("DELETE FROM content WHERE digest = \(text)", logger: self.logger)
            try await connection.query("DELETE FROM binary_scan WHERE image = \(text)", logger: self.logger)
            try await self.notify(connection, .content(digest))
        }
        recentTags.removeAll { $0.descriptor.digest == digest }
    }

    // MARK: - Links

    public func sources(_ digest: Digest, under name: RepositoryKey) async throws -> [LinkedSource] {
        let (text, upstream, repository) = (digest.description, name.upstream, name.repository.value)
        return try await call("read links") { client in
            let rows = try await client.query(
                """
                SELECT link.source_upstream, link.source_repository, presence.digest IS NOT NULL FROM link
                LEFT JOIN presence ON presence.digest = link.digest AND presence.upstream = link.source_upstream
                    AND presence.repository = link.source_repository
                WHERE link.digest = \(text) AND link.upstream = \(upstream) AND link.repository = \(repository) ORDER BY link.id
                """)
            var sources: [LinkedSource] = []
            for try await (sourceUpstream, sourceRepository, confirmed) in rows.decode((String, String, Bool).self) {
                // A name stored by another version that no longer parses is no source.
                guard let repository = try? RepositoryName(sourceRepository) else { continue }
                sources.append(
                    LinkedSource(origin: RepositoryKey(upstream: sourceUpstream, repository: repository), isConfirmed: confirmed))
            }
            return sources
        }
    }

    public func confirm(_ digest: Digest, at origin: RepositoryKey) async throws {
        try await transaction("confirm content") { connection in
            try await Self.insertPresence(connection, digest, at: origin, logger: self.logger)
        }
    }

    public func link(_ digests: [Digest], under name: RepositoryKey, source: RepositoryKey?) async throws {
        guard !digests.isEmpty else { return }
        try await transaction("link content") { connection in
            for digest in digests {
                try await Self.insertLink(connection, digest, name: name, source: source, logger: self.logger)
            }
        }
    }

    // MARK: - Access times

    public func noteAccess(_ digest: Digest, at date: Date) {
        pendingAccesses.note(digest, at: date)
    }

    /// Writes the noted access times in one statement; on failure they are noted again.
    public func flushAccesses() async throws {
        let accesses = pendingAccesses.take()
        guard !accesses.isEmpty else { return }
        let digests = accesses.keys.map(\.description)
        let dates = accesses.keys.map { accesses[$0]!.timeIntervalSince1970 }
        do {
            try await execute("write access times") { client in
                try await client.query(
                    """
                    UPDATE content SET last_access = GREATEST(content.last_access, noted.at)
                    FROM (SELECT UNNEST(\(digests)::TEXT[]) AS digest, UNNEST(\(dates)::FLOAT8[]) AS at) AS noted
                    WHERE content.digest = noted.digest
                    """)
            }
        } catch {
            pendingAccesses.putBack(accesses)
            throw error
        }
    }

    // MARK: - Mismatches

    public func recordMismatch(_ event: MismatchRecord) async throws {
        let seen = event.lastSeen.timeIntervalSince1970
        try await execute("record a mismatch") { client in
            try await client.query(
                """
                INSERT INTO mismatch (repository, reference, client_platform, image_platforms, kind, rule, count,
                    first_seen, last_seen, last_client, user_agent)
                VALUES (\(event.repository), \(event.reference), \(event.clientPlatform), \(event.imagePlatforms), \(event.kind),
                    \(event.rule), 1, \(seen), \(seen), \(event.lastClient), \(event.userAgent))
                ON CONFLICT (repository, reference, client_platform) DO UPDATE SET
                    count = mismatch.count + 1, last_seen = GREATEST(mismatch.last_seen, EXCLUDED.last_seen),
                    last_client = EXCLUDED.last_client, user_agent = EXCLUDED.user_agent,
                    image_platforms = EXCLUDED.image_platforms, kind = EXCLUDED.kind, rule = EXCLUDED.rule
                """)
        }
    }

    public func mismatches(since: Date?) async throws -> [MismatchRecord] {
        let since = since?.timeIntervalSince1970 ?? 0
        return try await call("read mismatches") { client in
            let rows = try await client.query(
                """
                SELECT repository, reference, client_platform, image_platforms, kind, rule, count, first_seen, last_seen,
                    last_client, user_agent
                FROM mismatch WHERE last_seen >= \(since) ORDER BY last_seen DESC, repository, reference
                """)
            var records: [MismatchRecord] = []
            for try await row in rows.decode(
                (String, String, String, String, String, String?, Int64, Double, Double, String?, String?).self)
            {
                records.append(
                    MismatchRecord(
                        repository: row.0, reference: row.1, clientPlatform: row.2, imagePlatforms: row.3, kind: row.4, rule: row.5,
                        count: Int(row.6), firstSeen: Date(timeIntervalSince1970: row.7), lastSeen: Date(timeIntervalSince1970: row.8),
                        lastClient: row.9, userAgent: row.10))
            }
            return records
        }
    }

    // MARK: - Binaries

    public func recordBinaries(_ record: BinaryRecord) async throws {
        let (image, at) = (record.image.description, record.scannedAt.timeIntervalSince1970)
        try await execute("record a binary scan") { client in
            try await client.query(
                """
                INSERT INTO binary_scan (image, platform, report, scanned_at) VALUES (\(image), \(record.platform), \(record.report), \(at))
                ON CONFLICT (image) DO UPDATE SET
                    platform = EXCLUDED.platform, report = EXCLUDED.report, scanned_at = EXCLUDED.scanned_at
                """)
        }
    }

    public func binaries(of image: Digest) async throws -> BinaryRecord? {
        let text = image.description
        return try await call("read a binary scan") { client in
            let rows = try await client.query("SELECT platform, report, scanned_at FROM binary_scan WHERE image = \(text)")
            for try await row in rows.decode((String, String, Double).self) {
                return BinaryRecord(image: image, platform: row.0, report: row.1, scannedAt: Date(timeIntervalSince1970: row.2))
            }
            return nil
        }
    }

    public func repositories(offset: Int, limit: Int) async throws -> (total: Int, page: [RepositorySummary]) {
        let (offset, limit) = (max(0, offset), max(0, limit))
        return try await call("list repositories") { client in
            var total = 0
            for try await count in try await client.query("SELECT COUNT(*) FROM (SELECT 1 FROM tag GROUP BY upstream, repository) AS r")
                .decode(Int64.self)
            {
                total = Int(count)
            }
            let rows = try await client.query(
                """
                SELECT upstream, repository, COUNT(DISTINCT tag), MAX(validated_at) FROM tag GROUP BY upstream, repository
                ORDER BY MAX(validated_at) DESC, upstream, repository LIMIT \(limit) OFFSET \(offset)
                """)
            var page: [RepositorySummary] = []
            for try await row in rows.decode((String, String, Int64, Double).self) {
                page.append(
                    RepositorySummary(
                        upstream: row.0, repository: row.1, tags: Int(row.2), lastValidated: Date(timeIntervalSince1970: row.3)))
            }
            return (total, page)
        }
    }

    // MARK: - Rows

    private static func tagRecord(_ row: (String, Double, String?, Int64)) -> TagRecord? {
        guard let digest = Digest(row.0) else { return nil }
        return TagRecord(
            descriptor: Descriptor(mediaType: MediaType(rawValue: row.2 ?? ""), digest: digest, size: row.3),
            validatedAt: Date(timeIntervalSince1970: row.1))
    }

    private static func contentRecord(_ row: (String, String, String?, Int64, Double)) -> ContentRecord? {
        guard let digest = Digest(row.0), let kind = ContentKind(rawValue: row.1) else { return nil }
        return ContentRecord(
            digest: digest, kind: kind, mediaType: row.2.map(MediaType.init(rawValue:)), size: row.3,
            lastAccess: Date(timeIntervalSince1970: row.4))
    }

    private static func upsertContent(
        _ connection: PostgresConnection, _ digest: Digest, kind: ContentKind, mediaType: String?, size: Int64, at date: Date,
        logger: Logger
    ) async throws {
        let (text, kindText, stamp) = (digest.description, kind.rawValue, date.timeIntervalSince1970)
        try await connection.query(
            """
            INSERT INTO content (digest, kind, media_type, size, stored_at, last_access)
            VALUES (\(text), \(kindText), \(mediaType), \(size), \(stamp), \(stamp))
            ON CONFLICT (digest) DO UPDATE SET last_access = GREATEST(content.last_access, EXCLUDED.last_access),
                media_type = COALESCE(EXCLUDED.media_type, content.media_type), kind = EXCLUDED.kind
            """, logger: logger)
    }

    /// The content is at `origin` (fetched from there): linked to it, and known to be there.
    private static func insertPresence(_ connection: PostgresConnection, _ digest: Digest, at origin: RepositoryKey, logger: Logger)
        async throws
    {
        try await insertLink(connection, digest, name: origin, source: nil, logger: logger)
        let (text, upstream, repository) = (digest.description, origin.upstream, origin.repository.value)
        try await connection.query(
            """
            INSERT INTO presence (digest, upstream, repository) VALUES (\(text), \(upstream), \(repository))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    private static func insertLink(
        _ connection: PostgresConnection, _ digest: Digest, name: RepositoryKey, source: RepositoryKey?, logger: Logger
    ) async throws {
        let source = source ?? name
        let (text, upstream, repository) = (digest.description, name.upstream, name.repository.value)
        let (sourceUpstream, sourceRepository) = (source.upstream, source.repository.value)
        try await connection.query(
            """
            INSERT INTO link (digest, upstream, repository, source_upstream, source_repository)
            VALUES (\(text), \(upstream), \(repository), \(sourceUpstream), \(sourceRepository))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}
