import Foundation
import GRDB
import OCI

/// What images' binaries are, kept per image digest (`binary_scan`); the repositories with cached tags.
extension SQLiteCatalog {
    public func recordBinaries(_ record: BinaryRecord) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO binary_scan (image, platform, report, scanned_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT(image) DO UPDATE SET
                        platform = excluded.platform, report = excluded.report, scanned_at = excluded.scanned_at
                    """,
                arguments: [record.image.description, record.platform, record.report, record.scannedAt.timeIntervalSince1970]
            )
        }
    }

    public func binaries(of image: Digest) async throws -> BinaryRecord? {
        try await database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT platform, report, scanned_at FROM binary_scan WHERE image = ?", arguments: [image.description]
            ).map { row in
                BinaryRecord(image: image, platform: row[0], report: row[1], scannedAt: Date(timeIntervalSince1970: row[2]))
            }
        }
    }

    public func repositories(offset: Int, limit: Int) async throws -> (total: Int, page: [RepositorySummary]) {
        try await database.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (SELECT 1 FROM tag GROUP BY upstream, repository)") ?? 0
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT upstream, repository, COUNT(DISTINCT tag), MAX(validated_at) FROM tag GROUP BY upstream, repository
                    ORDER BY MAX(validated_at) DESC, upstream, repository LIMIT ? OFFSET ?
                    """,
                arguments: [max(0, limit), max(0, offset)])
            return (
                total,
                rows.map { row in
                    RepositorySummary(
                        upstream: row[0], repository: row[1], tags: row[2], lastValidated: Date(timeIntervalSince1970: row[3]))
                }
            )
        }
    }
}
