import ArchwayTesting
import Cache
import Foundation
import NIOCore
import OCI
import ObjectStorage
import Synchronization
import Testing

/// The replica's store over radosgw: both tiers, nothing partial visible, bytes from the bucket
/// checked, the bucket down or back.
@Suite(.serialized) struct TieredBlobStoreTests {
    /// A store with its own local folder over the gateway's `archway` bucket.
    func makeStore(_ gateway: RadosGateway, localLimit: Int64? = nil) throws -> TieredBlobStore {
        // Under the gateway's folder: removed with it.
        let folder = gateway.directory.appendingPathComponent("replica-\(UUID().uuidString)")
        return TieredBlobStore(
            local: try LocalBlobStore(layout: StorageLayout(root: folder)), bucket: s3Client(gateway), localLimit: localLimit,
            partSize: 5 << 20)
    }

    /// Outcomes `finished` reported, in order.
    final class Outcomes: Sendable {
        let results = Mutex<[Result<Int64, any Error>]>([])
        var count: Int { results.withLock { $0.count } }
        var lastSucceeded: Bool { results.withLock { if case .success = $0.last { true } else { false } } }

        func record(_ result: Result<Int64, any Error>, _: Date) async { results.withLock { $0.append(result) } }
    }

    /// Fills `digest` from `content`, whole, and waits for the outcome.
    @discardableResult
    func fill(_ store: TieredBlobStore, _ content: ByteBuffer, as digest: Digest? = nil) async throws -> Result<Int64, any Error> {
        let outcomes = Outcomes()
        let download = try await store.fill(
            digest ?? Digest.sha256(content.readableBytesView), join: true, scope: nil, now: Date.init,
            open: { (Int64(content.readableBytes), ByteStreamOf(content, chunk: 1 << 20)) }, finished: outcomes.record)
        _ = try? await download?.result()
        try await waitUntil(timeout: .seconds(30), "the outcome to be recorded") { outcomes.count == 1 }
        return outcomes.results.withLock { $0[0] }
    }

    func readAll(_ reader: any BlobReading) async throws -> ByteBuffer {
        var all = ByteBuffer()
        while var chunk = try await reader.next() { all.writeBuffer(&chunk) }
        return all
    }

    @Test func aDownloadReachesBothTiersAndNothingIsVisibleBeforeItsDigestMatched() async throws {
        try await withRadosGateway { gateway in
            try await s3Client(gateway).createBucket()
            let store = try makeStore(gateway)
            let content = patterned(12 << 20 + 321)
            let digest = Digest.sha256(content.readableBytesView)
            let (body, feed) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            let outcomes = Outcomes()
            let download = try #require(
                try await store.fill(
                    digest, join: true, scope: nil, now: Date.init, open: { (Int64(content.readableBytes), body) },
                    finished: outcomes.record))
            let follower = download.reader(range: nil)
            // All but the last 321 bytes: two parts are sent, the object does not exist yet.
            feed.yield(content.getSlice(at: 0, length: 12 << 20)!)
            let client = s3Client(gateway)
            try await waitUntil(timeout: .seconds(30), "the upload to start") {
                (try? await client.multipartUploads(prefix: "blobs/").count) == 1
            }
            try await waitUntil(timeout: .seconds(30), "the follower to see the bytes") {
                (try? await follower.readable(beyond: 0)) ?? 0 > 10 << 20
            }
            #expect(try await client.length(of: TieredBlobStore.key(digest)) == nil)
            #expect(store.local.length(of: digest) == nil)
            #expect(try await follower.readable(beyond: 0) < Int64(content.readableBytes), "never the last byte before the digest matched")
            feed.yield(content.getSlice(at: 12 << 20, length: 321)!)
            feed.finish()
            #expect(try await download.result() == Int64(content.readableBytes))
            // Completed in the bucket before the local file was published, not after.
            #expect(try await client.length(of: TieredBlobStore.key(digest)) == Int64(content.readableBytes))
            #expect(try await readAll(follower) == content)
            try await waitUntil(timeout: .seconds(30), "the outcome to be recorded") { outcomes.count == 1 }
            #expect(outcomes.lastSucceeded)
            #expect(try await client.length(of: TieredBlobStore.key(digest)) == Int64(content.readableBytes))
            #expect(try await client.get(TieredBlobStore.key(digest))?.body.collect(upTo: 16 << 20) == content)
            #expect(try await client.multipartUploads(prefix: "blobs/").isEmpty)
            #expect(store.local.length(of: digest) == Int64(content.readableBytes))
            #expect(try await store.storedDigests() == [digest])
        }
    }

    @Test func aDownloadThatFailsLeavesNothingInEitherTier() async throws {
        try await withRadosGateway { gateway in
            let client = s3Client(gateway)
            try await client.createBucket()
            let store = try makeStore(gateway)
            // Bytes that are not the digest's, and a body that breaks after two parts.
            let content = patterned(11 << 20)
            let claimed = Digest.sha256(patterned(11 << 20, seed: 9).readableBytesView)
            let mismatch = try await fill(store, content, as: claimed)
            #expect(throws: StorageError.self) { try mismatch.get() }
            let (body, feed) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            let outcomes = Outcomes()
            _ = try await store.fill(
                Digest.sha256(content.readableBytesView), join: true, scope: nil, now: Date.init,
                open: { (Int64(content.readableBytes), body) }, finished: outcomes.record)
            feed.yield(content.getSlice(at: 0, length: 10 << 20)!)
            try await waitUntil(timeout: .seconds(30), "the upload to start") {
                (try? await client.multipartUploads(prefix: "blobs/").count) == 1
            }
            feed.finish(throwing: CancellationError())
            try await waitUntil(timeout: .seconds(30), "the outcome to be recorded") { outcomes.count == 1 }
            #expect(!outcomes.lastSucceeded)
            #expect(try await client.objects(prefix: "").isEmpty, "no object")
            #expect(try await client.multipartUploads(prefix: "").isEmpty, "every upload aborted")
            #expect(try await store.local.storedDigests().isEmpty, "no local file")
        }
    }

    @Test func anotherReplicaReadsTheBucketAndChecksWhatItReads() async throws {
        try await withRadosGateway { gateway in
            let client = s3Client(gateway)
            try await client.createBucket()
            let first = try makeStore(gateway)
            let second = try makeStore(gateway)
            let content = patterned(6 << 20 + 5)
            let digest = Digest.sha256(content.readableBytesView)
            _ = try await fill(first, content).get()
            let manifest = Data(#"{"schemaVersion":2}"#.utf8)
            try await first.store(manifest, as: Digest.sha256(manifest))

            // The second replica has neither on its disk: it finds both in the bucket.
            #expect(second.local.length(of: digest) == nil)
            #expect(await second.length(of: digest) == Int64(content.readableBytes))
            let reader = try #require(await second.reader(digest, range: nil))
            #expect(try await readAll(reader) == content)
            try await waitUntil(timeout: .seconds(10), "the copy to reach the local tier") { second.local.length(of: digest) != nil }
            let ranged = try #require(await second.reader(digest, range: 100...199))
            #expect(try await readAll(ranged) == content.getSlice(at: 100, length: 100))
            #expect(try await second.data(Digest.sha256(manifest), limit: 1 << 20) == manifest)

            // Bytes in the bucket that are not the content: refused, and dropped from the bucket.
            let forged = patterned(1 << 20, seed: 3)
            let victim = Digest.sha256(patterned(1 << 20, seed: 4).readableBytesView)
            try await client.put(TieredBlobStore.key(victim), forged)
            let third = try makeStore(gateway)
            let bad = try #require(await third.reader(victim, range: nil))
            await #expect(throws: StorageError.self) { _ = try await readAll(bad) }
            try await waitUntil(timeout: .seconds(10), "the forged object to be deleted") {
                (try? await client.length(of: TieredBlobStore.key(victim))) == .some(nil)
            }
            #expect(third.local.length(of: victim) == nil)
            let forgedManifest = Digest.sha256(Data("another manifest".utf8))
            try await client.put(TieredBlobStore.key(forgedManifest), ByteBuffer(string: "not that manifest"))
            await #expect(throws: StorageError.self) { _ = try await third.data(forgedManifest, limit: 1 << 20) }
        }
    }

    @Test func theLocalTierKeepsToItsSizeAndTheBucketKeepsEverything() async throws {
        try await withRadosGateway { gateway in
            try await s3Client(gateway).createBucket()
            let store = try makeStore(gateway, localLimit: 9 << 20)
            let contents = (1...3).map { patterned(4 << 20, seed: UInt8($0)) }
            for content in contents { _ = try await fill(store, content).get() }
            let digests = contents.map { Digest.sha256($0.readableBytesView) }
            let local = try await store.local.storedDigests()
            #expect(local.count == 2 && !local.contains(digests[0]), "the least recently used copy left the disk")
            #expect(try await store.storedDigests() == Set(digests))
            // Read again, the first comes back from the bucket; the limit still holds.
            #expect(try await readAll(try #require(await store.reader(digests[0], range: nil))) == contents[0])
            try await waitUntil(timeout: .seconds(10), "the tier to be trimmed") {
                (try? await store.local.storedDigests().count) == 2 && store.local.length(of: digests[0]) != nil
            }
        }
    }

    @Test func theBucketsSizeLimitEvictsFromBothTiersLeastRecentlyUsedFirst() async throws {
        try await withRadosGateway { gateway in
            let client = s3Client(gateway)
            try await client.createBucket()
            let store = try makeStore(gateway)
            let catalog = try SQLiteCatalog.inMemory()
            let source = RepositoryKey(upstream: "docker.io", repository: try RepositoryName("library/app"))
            let contents = (1...3).map { patterned(2 << 20, seed: UInt8(10 + $0)) }
            let digests = contents.map { Digest.sha256($0.readableBytesView) }
            for (index, content) in contents.enumerated() {
                let size = try await fill(store, content).get()
                try await catalog.recordBlob(digests[index], size: size, from: source, at: Date(timeIntervalSince1970: Double(100 + index)))
            }
            catalog.noteAccess(digests[0], at: Date(timeIntervalSince1970: 500))  // the first is used again: the second goes
            let pass = try await Evictor(store: store, catalog: catalog, maximumSize: 5 << 20).evictIfNeeded()
            #expect(pass.removed == [digests[1]])
            #expect(try await client.length(of: TieredBlobStore.key(digests[1])) == nil, "gone from the bucket")
            #expect(store.local.length(of: digests[1]) == nil, "and from the disk")
            #expect(try await store.storedDigests() == [digests[0], digests[2]])
        }
    }

    @Test func withTheBucketDownHitsAreServedAndMissesFailAtOnce() async throws {
        try await withRadosGateway { gateway in
            try await s3Client(gateway).createBucket()
            let store = try makeStore(gateway)
            let content = patterned(1 << 20, seed: 5)
            let digest = Digest.sha256(content.readableBytesView)
            _ = try await fill(store, content).get()
            await gateway.stopGateway()

            #expect(try await readAll(try #require(await store.reader(digest, range: nil))) == content)
            let unknown = Digest.sha256(patterned(1 << 20, seed: 6).readableBytesView)
            #expect(await store.length(of: unknown) == nil)
            let started = ContinuousClock.now
            let failed = try await fill(store, patterned(1 << 20, seed: 6))
            #expect(throws: StorageError.self) { try failed.get() }
            #expect(started.duration(to: .now) < .seconds(5), "a prompt failure, not a timeout")
            #expect(await store.problems().contains { $0.contains("not usable") })

            try await gateway.startGateway()
            _ = try await fill(store, patterned(1 << 20, seed: 6)).get()
            #expect(await store.problems().isEmpty)
        }
    }

    @Test func abandonedUploadsAreSweptButNotOneRunningHere() async throws {
        try await withRadosGateway { gateway in
            let client = s3Client(gateway)
            try await client.createBucket()
            let store = try makeStore(gateway)
            let content = patterned(6 << 20, seed: 7)
            let digest = Digest.sha256(content.readableBytesView)
            // A dead replica's upload, and one of a download running here.
            _ = try await client.createMultipartUpload(TieredBlobStore.key(Digest.sha256(Data("dead".utf8))))
            let (body, feed) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            let download = try #require(
                try await store.fill(
                    digest, join: true, scope: nil, now: Date.init, open: { (Int64(content.readableBytes), body) },
                    finished: { _, _ in }))
            feed.yield(content.getSlice(at: 0, length: 1 << 20)!)
            try await waitUntil(timeout: .seconds(30), "both uploads to exist") {
                (try? await client.multipartUploads(prefix: "").count) == 2
            }
            #expect(try await store.sweepAbandonedUploads(olderThan: .seconds(3600)) == 0, "both are recent")
            #expect(try await store.sweepAbandonedUploads(olderThan: .zero, now: Date().addingTimeInterval(5)) == 1)
            let left = try await client.multipartUploads(prefix: "")
            #expect(left.map(\.key) == [TieredBlobStore.key(digest)])
            feed.yield(content.getSlice(at: 1 << 20, length: 5 << 20)!)
            feed.finish()
            #expect(try await download.result() == Int64(content.readableBytes))
        }
    }
}

/// Bytes in memory as a body of `chunk`-sized pieces.
struct ByteStreamOf: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer
    let chunk: Int

    init(_ buffer: ByteBuffer, chunk: Int) {
        self.buffer = buffer
        self.chunk = chunk
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: ByteBuffer
        let chunk: Int

        mutating func next() async throws -> ByteBuffer? {
            guard rest.readableBytes > 0 else { return nil }
            return rest.readSlice(length: Swift.min(chunk, rest.readableBytes))
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: buffer, chunk: chunk) }
}
