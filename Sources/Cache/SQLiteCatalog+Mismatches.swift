import Foundation
import GRDB

/// An architecture mismatch as the catalog keeps it: aggregated per (repository, reference,
/// client platform).
public struct MismatchRecord: Sendable, Hashable, Codable {
    public var repository: String
    public var reference: String
    public var clientPlatform: String
    /// The platforms the image has, comma-separated (`linux/amd64,linux/arm/v7`).
    public var imagePlatforms: String
    public var kind: String
    public var rule: String?
    public var count: Int
    public var firstSeen: Date
    public var lastSeen: Date
    public var lastClient: String?
    public var userAgent: String?

    public init(
        repository: String, reference: String, clientPlatform: String, imagePlatforms: String, kind: String, rule: String?,
        count: Int = 1, firstSeen: Date, lastSeen: Date, lastClient: String?, userAgent: String?
    ) {
        self.repository = repository
        self.reference = reference
        self.clientPlatform = clientPlatform
        self.imagePlatforms = imagePlatforms
        self.kind = kind
        self.rule = rule
        self.count = count
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.lastClient = lastClient
        self.userAgent = userAgent
    }
}

extension SQLiteCatalog {
    /// Counts one more occurrence of a mismatch (the record's count is ignored).
    public func recordMismatch(_ event: MismatchRecord) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO mismatch (repository, reference, client_platform, image_platforms, kind, rule, count,
                        first_seen, last_seen, last_client, user_agent)
                    VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
                    ON CONFLICT(repository, reference, client_platform) DO UPDATE SET
                        count = count + 1, last_seen = excluded.last_seen, last_client = excluded.last_client,
                        user_agent = excluded.user_agent, image_platforms = excluded.image_platforms,
                        kind = excluded.kind, rule = excluded.rule
                    """,
                arguments: [
                    event.repository, event.reference, event.clientPlatform, event.imagePlatforms, event.kind, event.rule,
                    event.lastSeen.timeIntervalSince1970, event.lastSeen.timeIntervalSince1970, event.lastClient, event.userAgent,
                ]
            )
        }
    }

    /// Mismatches last seen at or after `since` (all when nil), most recent first.
    public func mismatches(since: Date?) async throws -> [MismatchRecord] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT repository, reference, client_platform, image_platforms, kind, rule, count, first_seen, last_seen,
                        last_client, user_agent
                    FROM mismatch WHERE last_seen >= ? ORDER BY last_seen DESC, repository, reference
                    """,
                arguments: [since?.timeIntervalSince1970 ?? 0]
            ).map { row in
                MismatchRecord(
                    repository: row[0], reference: row[1], clientPlatform: row[2], imagePlatforms: row[3], kind: row[4], rule: row[5],
                    count: row[6], firstSeen: Date(timeIntervalSince1970: row[7]), lastSeen: Date(timeIntervalSince1970: row[8]),
                    lastClient: row[9], userAgent: row[10]
                )
            }
        }
    }
}
