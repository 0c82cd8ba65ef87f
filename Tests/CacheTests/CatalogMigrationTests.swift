import Foundation
import GRDB
import OCI
import Testing

@testable import Cache

/// A catalog written by an earlier version opens, and what it knew is still known.
@Suite struct CatalogMigrationTests {
    @Test func synthesizedTagsKeyedByAMadeUpAcceptAreKeyedByTheirRule() async throws {
        let database = try DatabaseQueue()
        try SQLiteCatalog.migrator.migrate(database, upTo: "v4: links between names and content")
        let index = Digest.sha256(Data("index".utf8))
        let manifest = Digest.sha256(Data("manifest".utf8))
        try await database.write { db in
            for digest in [index, manifest] {
                try db.execute(
                    sql: "INSERT INTO content (digest, kind, media_type, size, stored_at, last_access) VALUES (?, 'manifest', ?, 5, 1, 1)",
                    arguments: [digest.description, MediaType.ociIndex.rawValue])
            }
            try db.execute(
                sql: "INSERT INTO tag (upstream, repository, tag, accept, digest, validated_at) VALUES (?, ?, ?, ?, ?, 10)",
                arguments: ["docker.io", "library/app", "1.0", "archway:synthesized:f00d", index.description])
            try db.execute(
                sql: "INSERT INTO tag (upstream, repository, tag, accept, digest, validated_at) VALUES (?, ?, ?, ?, ?, 20)",
                arguments: ["docker.io", "library/app", "1.0", MediaType.ociIndex.rawValue, manifest.description])
        }
        let catalog = try SQLiteCatalog(database: database)
        let synthesized = TagKey(upstream: "docker.io", repository: "library/app", tag: "1.0", synthesizedBy: "f00d")
        #expect(try await catalog.tag(synthesized)?.descriptor.digest == index)
        let asked = TagKey(upstream: "docker.io", repository: "library/app", tag: "1.0", accepting: [MediaType.ociIndex.rawValue])
        #expect(try await catalog.tag(asked)?.descriptor.digest == manifest)
        // A stale answer for another Accept set is the upstream's, never a synthesized index.
        #expect(
            try await catalog.tagAnswers(upstream: "docker.io", repository: "library/app", tag: "1.0").map(\.descriptor.digest) == [
                manifest
            ])
        // Another rule's fingerprint finds nothing: a changed rule never serves the old index.
        #expect(try await catalog.tag(TagKey(upstream: "docker.io", repository: "library/app", tag: "1.0", synthesizedBy: "beef")) == nil)
    }
}
