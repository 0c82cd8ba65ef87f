import Foundation
import GRDB
import OCI

/// What images' binaries are, kept per image digest (`binary_scan`).
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
}
