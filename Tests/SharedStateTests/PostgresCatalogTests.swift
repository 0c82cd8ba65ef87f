import ArchwayTesting
import Cache
import Foundation
import OCI
import SharedState
import Testing

/// What only a shared catalog does: replicas starting together, hearing each other's changes,
/// the database going away and coming back.
@Suite(.serialized) struct PostgresCatalogTests {
    let app = RepositoryKey(upstream: "docker.io", repository: try! RepositoryName("library/app"))

    @Test func replicasStartingTogetherMigrateOnceAndANewerSchemaIsRefused() async throws {
        try await withPostgres { server in
            try await withPostgresCatalog(server) { first in
                try await withPostgresCatalog(server) { second in
                    async let one: Void = first.migrate()
                    async let two: Void = second.migrate()
                    _ = try await (one, two)
                }
            }
            #expect(try await server.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM archway_schema") == "1,2,3")
            _ = try await server.psql("INSERT INTO archway_schema VALUES (99, 'from the future', 0)")
            try await withPostgresCatalog(server) { catalog in
                let refused = await #expect(throws: CatalogUnavailable.self) { _ = try await catalog.totalSize() }
                #expect(refused?.reason.contains("version 99") == true, "\(String(describing: refused))")
            }
        }
    }

    @Test func aTagMovedByOneReplicaIsSeenByAnotherAtOnce() async throws {
        try await withPostgres { server in
            try await withPostgresCatalog(server) { first in
                try await withPostgresCatalog(server) { second in
                    let key = TagKey(upstream: "docker.io", repository: "library/app", tag: "1", accepting: ["a"])
                    let old = CatalogContractTests.descriptor("old")
                    let new = CatalogContractTests.descriptor("new")
                    try await first.recordManifest(old, from: app, tag: key, at: Date())
                    #expect(try await second.tag(key)?.descriptor == old, "now in the second's memory")
                    try await first.recordManifest(new, from: app, tag: key, at: Date())
                    // Without the notification the second would answer from memory until its TTL.
                    try await waitUntil(timeout: .seconds(10), "the second replica to hear of the move") {
                        (try? await second.tag(key))??.descriptor == new
                    }
                    try await second.removeTag(key)
                    try await waitUntil(timeout: .seconds(10), "the first replica to hear of the removal") {
                        (try? await first.tag(key)) == .some(nil)
                    }
                    // Content removed on one replica leaves the other's memory too.
                    try await first.recordManifest(old, from: app, tag: key, at: Date())
                    try await waitUntil(timeout: .seconds(10), "the second to see the tag") {
                        (try? await second.tag(key))??.descriptor == old
                    }
                    try await first.remove(old.digest)
                    try await waitUntil(timeout: .seconds(10), "the second to forget it") { (try? await second.tag(key)) == .some(nil) }
                }
            }
        }
    }

    @Test func withTheDatabaseDownMemoryStillAnswersAndTheRestFailsPromptly() async throws {
        try await withPostgres { server in
            try await withPostgresCatalog(server, callTimeout: .seconds(2)) { catalog in
                let key = TagKey(upstream: "docker.io", repository: "library/app", tag: "1", accepting: ["a"])
                let manifest = CatalogContractTests.descriptor("kept")
                try await catalog.recordManifest(manifest, from: app, tag: key, at: Date())
                await server.stop()

                #expect(try await catalog.tag(key)?.descriptor == manifest, "from memory")
                let started = ContinuousClock.now
                await #expect(throws: CatalogUnavailable.self) { _ = try await catalog.content(manifest.digest) }
                await #expect(throws: CatalogUnavailable.self) {
                    try await catalog.recordBlob(Digest.sha256(Data("x".utf8)), size: 1, from: app, at: Date())
                }
                #expect(started.duration(to: .now) < .seconds(10), "bounded by the call timeout, not hung")
                catalog.noteAccess(manifest.digest, at: Date(timeIntervalSince1970: 5_000_000_000))
                await #expect(throws: CatalogUnavailable.self) { try await catalog.flushAccesses() }

                try await server.launch()
                try await waitUntil(timeout: .seconds(30), "the catalog to answer again") {
                    (try? await catalog.content(manifest.digest)) != nil
                }
                try await catalog.flushAccesses()  // noted again after the failure: written now
                #expect(try await catalog.content(manifest.digest)?.lastAccess == Date(timeIntervalSince1970: 5_000_000_000))
            }
        }
    }

    @Test func databaseAddressesAreParsedStrictly() {
        let parsed = DatabaseAddress(url: "postgres://archway@db.internal:6432/cache?sslmode=require")
        #expect(parsed == DatabaseAddress(host: "db.internal", port: 6432, user: "archway", database: "cache", tls: .require))
        #expect(DatabaseAddress(url: "postgresql://u@[::1]/d")?.host == "::1")
        #expect(DatabaseAddress(url: "postgres://u@h/d")?.port == 5432)
        for bad in [
            "mysql://u@h/d", "postgres://h/d", "postgres://u:secret@h/d", "postgres://u@h:99999/d", "postgres://u@h/",
            "postgres://u@h/d?sslmode=sometimes", "postgres://u@h/d?other=1", "postgres://u@h x/d",
        ] {
            #expect(DatabaseAddress(url: bad) == nil, "\(bad)")
        }
    }
}
