import ArchwayTesting
import Cache
import Foundation
import Logging
import OCI
import SharedState
import Testing

/// What every ``Catalog`` must do, run against SQLite and against a real PostgreSQL: the two
/// implementations answer the same questions the same way.
@Suite struct CatalogContractTests {
    static func descriptor(_ text: String, _ mediaType: MediaType = .ociManifest) -> Descriptor {
        let bytes = Data(text.utf8)
        return Descriptor(mediaType: mediaType, digest: Digest.sha256(bytes), size: Int64(bytes.count))
    }

    static func key(_ upstream: String, _ repository: String) throws -> RepositoryKey {
        RepositoryKey(upstream: upstream, repository: try RepositoryName(repository))
    }

    static func date(_ seconds: Double) -> Date { Date(timeIntervalSince1970: seconds) }

    /// The contract, on a fresh catalog.
    static func keepsTheContract(_ catalog: any Catalog) async throws {
        let app = try key("docker.io", "library/app")
        let other = try key("docker.io", "library/other")
        let ghcr = try key("ghcr.io", "org/app")

        // Tags: one answer per Accept set and per rule, most recently confirmed first.
        let oci = TagKey(upstream: "docker.io", repository: "library/app", tag: "1", accepting: ["b", "a"])
        let docker = TagKey(upstream: "docker.io", repository: "library/app", tag: "1", accepting: ["c"])
        let synthesized = TagKey(upstream: "docker.io", repository: "library/app", tag: "1", synthesizedBy: "f1")
        let (index, child, made) = (descriptor("index", .ociIndex), descriptor("child", .dockerManifest), descriptor("made", .ociIndex))
        try await catalog.recordManifest(index, from: app, tag: oci, at: date(100))
        try await catalog.recordManifest(child, from: app, tag: docker, at: date(200))
        try await catalog.recordManifest(made, from: app, tag: synthesized, at: date(250))
        #expect(try await catalog.tag(oci)?.descriptor == index)
        #expect(try await catalog.tag(docker) == TagRecord(descriptor: child, validatedAt: date(200)))
        #expect(try await catalog.tag(synthesized)?.descriptor == made)
        #expect(
            try await catalog.tagAnswers(upstream: "docker.io", repository: "library/app", tag: "1").map(\.descriptor) == [child, index])
        try await catalog.markValidated(oci, at: date(300))
        #expect(try await catalog.tag(oci)?.validatedAt == date(300))
        // A moved tag answers the new digest.
        let moved = descriptor("index v2", .ociIndex)
        try await catalog.recordManifest(moved, from: app, tag: oci, at: date(310))
        #expect(try await catalog.tag(oci)?.descriptor == moved)
        try await catalog.removeTag(docker)
        #expect(try await catalog.tag(docker) == nil)

        // Content: recorded once (a second record is success), counted, least recently used first.
        let layer = Digest.sha256(Data("layer".utf8))
        let config = Digest.sha256(Data("config".utf8))
        try await catalog.recordBlob(layer, size: 1000, from: app, at: date(400))
        try await catalog.recordBlob(layer, size: 1000, from: ghcr, at: date(401))
        try await catalog.recordBlob(config, size: 10, from: app, at: date(402))
        try await catalog.adopt(config, size: 99, at: date(403))  // known already: unchanged
        #expect(try await catalog.content(layer)?.kind == .blob)
        #expect(try await catalog.content(config)?.size == 10)
        #expect(try await catalog.content(index.digest)?.mediaType == .ociIndex)
        let total = [index, child, made, moved].reduce(Int64(1010)) { $0 + $1.size }
        #expect(try await catalog.totalSize() == total)
        #expect(try await catalog.allDigests() == [index.digest, child.digest, made.digest, moved.digest, layer, config])
        catalog.noteAccess(index.digest, at: date(1000))
        catalog.noteAccess(layer, at: date(1001))
        catalog.noteAccess(child.digest, at: date(50))  // older than it is: kept at its own
        try await catalog.flushAccesses()
        #expect(try await catalog.leastRecentlyUsed(limit: 3).map(\.digest) == [child.digest, made.digest, moved.digest])
        #expect(try await catalog.leastRecentlyUsed(limit: 10).suffix(2).map(\.digest) == [index.digest, layer])

        // Links: who may read what, in the order recorded, with presence.
        #expect(try await catalog.sources(layer, under: app) == [LinkedSource(origin: app, isConfirmed: true)])
        #expect(try await catalog.sources(layer, under: other).isEmpty)
        try await catalog.link([layer, config], under: other, source: ghcr)
        try await catalog.link([layer], under: other)
        #expect(
            try await catalog.sources(layer, under: other) == [
                LinkedSource(origin: ghcr, isConfirmed: true), LinkedSource(origin: other, isConfirmed: false),
            ])
        #expect(try await catalog.sources(config, under: other) == [LinkedSource(origin: ghcr, isConfirmed: false)])
        try await catalog.confirm(config, at: ghcr)
        #expect(try await catalog.sources(config, under: other) == [LinkedSource(origin: ghcr, isConfirmed: true)])

        // Removing content forgets it and the tags that named it, not its links.
        try await catalog.remove(moved.digest)
        #expect(try await catalog.tag(oci) == nil)
        #expect(try await catalog.tag(synthesized) != nil)
        #expect(try await catalog.content(moved.digest) == nil)
        try await catalog.remove(layer)
        #expect(try await catalog.sources(layer, under: other).count == 2)

        // Mismatches: one row per (repository, reference, client platform), counted.
        func event(_ at: Double, client: String) -> MismatchRecord {
            MismatchRecord(
                repository: "docker.io/library/app", reference: "1", clientPlatform: "linux/arm64", imagePlatforms: "linux/amd64",
                kind: "single-platform", rule: "app", firstSeen: date(at), lastSeen: date(at), lastClient: client, userAgent: "ctr/1.7")
        }
        try await catalog.recordMismatch(event(500, client: "10.0.0.1"))
        try await catalog.recordMismatch(event(600, client: "10.0.0.2"))
        var third = event(550, client: "10.0.0.3")
        third.clientPlatform = "linux/arm/v7"
        try await catalog.recordMismatch(third)
        let mismatches = try await catalog.mismatches(since: nil)
        #expect(mismatches.map(\.clientPlatform) == ["linux/arm64", "linux/arm/v7"])
        #expect(mismatches[0].count == 2 && mismatches[0].firstSeen == date(500) && mismatches[0].lastClient == "10.0.0.2")
        #expect(try await catalog.mismatches(since: date(560)).count == 1)

        // Repositories with cached tags, most recently confirmed first, a page at a time.
        let listed = try await catalog.repositories(offset: 0, limit: 100)
        #expect(listed.total == listed.page.count && listed.total > 0)
        #expect(zip(listed.page, listed.page.dropFirst()).allSatisfy { $0.lastValidated >= $1.lastValidated })
        let second = try await catalog.repositories(offset: 1, limit: 1)
        #expect(second.total == listed.total)
        #expect(second.page == (listed.total > 1 ? [listed.page[1]] : []))

        // Binary scans: kept per image, replaced by a later scan, forgotten with the image.
        let image = descriptor("binaries").digest
        #expect(try await catalog.binaries(of: image) == nil)
        try await catalog.recordBinaries(
            BinaryRecord(image: image, platform: "linux/arm64", report: #"{"outcome":"missing"}"#, scannedAt: date(700)))
        try await catalog.recordBinaries(
            BinaryRecord(image: image, platform: "linux/arm64", report: #"{"outcome":"found"}"#, scannedAt: date(710)))
        let scanned = try await catalog.binaries(of: image)
        #expect(scanned == BinaryRecord(image: image, platform: "linux/arm64", report: #"{"outcome":"found"}"#, scannedAt: date(710)))
        try await catalog.recordManifest(descriptor("binaries"), from: try key("docker.io", "library/app"), tag: nil, at: date(700))
        try await catalog.remove(image)
        #expect(try await catalog.binaries(of: image) == nil)
    }

    @Test func sqliteKeepsTheContract() async throws {
        try await Self.keepsTheContract(try SQLiteCatalog.inMemory())
    }

    @Test func postgresKeepsTheContract() async throws {
        try await withPostgres { server in
            // The contract, not the 5 s bound on each call (PostgresCatalogTests holds that): a
            // loaded machine must not fail it.
            try await withPostgresCatalog(server, callTimeout: .seconds(30)) { catalog in try await Self.keepsTheContract(catalog) }
        }
    }
}

/// A catalog on `server`, running (its pool and listener) while `body` runs.
func withPostgresCatalog<T: Sendable>(
    _ server: PostgresServer, callTimeout: Duration = .seconds(5), _ body: @Sendable (PostgresCatalog) async throws -> T
) async throws -> T {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let catalog = PostgresCatalog(
        database: DatabaseAddress(host: "127.0.0.1", port: server.port, user: server.user, database: server.database, tls: .disable),
        callTimeout: callTimeout, logger: logger)
    let running = Task { await catalog.run() }
    defer { running.cancel() }
    return try await body(catalog)
}
