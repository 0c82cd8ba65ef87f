import Cache
import Foundation
import NIOCore
import OCI
import Synchronization
import Testing

/// A body whose chunks the test hands over one at a time.
final class ControlledBody: Sendable {
    let stream: AsyncThrowingStream<ByteBuffer, any Error>
    let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation

    init() {
        (stream, continuation) = AsyncThrowingStream.makeStream()
    }

    func send(_ bytes: [UInt8]) { continuation.yield(ByteBuffer(bytes: bytes)) }
    func finish() { continuation.finish() }
    func fail() { continuation.finish(throwing: CancellationError()) }
}

func temporaryStore() throws -> LocalBlobStore {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-store-\(UInt64.random(in: 0...UInt64.max))")
    return try LocalBlobStore(layout: StorageLayout(root: root))
}

func readAll(_ reader: any BlobReading) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    while let chunk = try await reader.next() { bytes += chunk.readableBytesView }
    return bytes
}

@Suite struct BlobStoreTests {
    @Test func smallContentIsVerifiedBeforeItIsStored() async throws {
        let store = try temporaryStore()
        let bytes = Data("{\"schemaVersion\":2}".utf8)
        await #expect(throws: StorageError.self) { try await store.store(bytes, as: Digest.sha256(Data("other".utf8))) }
        #expect(store.length(of: Digest.sha256(Data("other".utf8))) == nil)
        try await store.store(bytes, as: Digest.sha256(bytes))
        #expect(try await store.data(Digest.sha256(bytes), limit: 1 << 20) == bytes)
        #expect(store.length(of: Digest.sha256(bytes)) == Int64(bytes.count))
    }

    @Test func oneFillIsFollowedByEveryReaderAndTheLastByteWaitsForVerification() async throws {
        let store = try temporaryStore()
        let content: [UInt8] = Array(0..<200)
        let digest = Digest.sha256(content)
        let body = ControlledBody()
        let opened = Tally()
        let open: @Sendable () async throws -> (length: Int64?, body: AsyncThrowingStream<ByteBuffer, any Error>) = {
            opened.add()
            return (Int64(content.count), body.stream)
        }
        let fill = try #require(try store.fill(digest, open: open, finished: { _, _ in }))
        let again = try #require(try store.fill(digest, open: open, finished: { _, _ in }))
        #expect(fill === again, "single flight")
        let first = fill.reader(range: nil)
        let second = fill.reader(range: nil)
        body.send(Array(content[0..<100]))
        // A reader gets what was written, except the last byte, before the fill ends.
        let early = try #require(try await first.next())
        #expect(Array(early.readableBytesView) == Array(content[0..<99]))
        body.send(Array(content[100...]))
        body.finish()
        #expect(try await fill.result() == 200)
        #expect(try await readAll(first) == Array(content[99...]))
        #expect(try await readAll(second) == content)
        #expect(opened.value == 1)
        #expect(store.length(of: digest) == 200)
        let ranged = try #require(store.reader(digest, range: 10...19))
        #expect(try await readAll(ranged) == Array(content[10...19]))
    }

    @Test(arguments: ["mismatch", "broken", "short"])
    func failedFillsLeaveNothingAndFailEveryReader(failure: String) async throws {
        let store = try temporaryStore()
        let content: [UInt8] = Array(repeating: 7, count: 64)
        let digest = Digest.sha256(content)
        let body = ControlledBody()
        let fill = try #require(
            try store.fill(digest, open: { (Int64(content.count), body.stream) }, finished: { _, _ in })
        )
        let reader = fill.reader(range: nil)
        switch failure {
        case "mismatch":
            body.send(Array(repeating: 8, count: 64))
            body.finish()
        case "broken":
            body.send(Array(content[0..<10]))
            body.fail()
        default:
            body.send(Array(content[0..<10]))
            body.finish()
        }
        await #expect(throws: (any Error).self) { _ = try await fill.result() }
        await #expect(throws: (any Error).self) { _ = try await readAll(reader) }
        #expect(store.length(of: digest) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.layout.temporaryDirectory.path).isEmpty)
    }

    @Test func contentInUseIsNotRemoved() async throws {
        let store = try temporaryStore()
        let bytes = Data("in use".utf8)
        let digest = Digest.sha256(bytes)
        try await store.store(bytes, as: digest)
        var reader: BlobReader? = store.localReader(digest)
        #expect(reader != nil)
        #expect(!store.remove(digest))
        reader = nil
        #expect(store.remove(digest))
        #expect(store.length(of: digest) == nil)
    }

    @Test func startUpRemovesLeftoversInTmp() throws {
        let store = try temporaryStore()
        let leftover = store.layout.temporaryDirectory.appendingPathComponent("partial")
        try Data("partial".utf8).write(to: leftover)
        _ = try LocalBlobStore(layout: store.layout)
        #expect(!FileManager.default.fileExists(atPath: leftover.path))
    }
}

/// A count shared by concurrent tasks.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)

    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Downloads owned by a runner: closing it starts nothing new and waits for what runs.
@Suite struct DownloadRunnerTests {
    @Test func closingWaitsForRunningDownloadsAndRefusesNewOnes() async throws {
        let runner = DownloadRunner.group()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-store-\(UInt64.random(in: 0...UInt64.max))")
        let store = try LocalBlobStore(layout: StorageLayout(root: root), downloads: runner)
        let running = Task { await runner.run() }
        let content: [UInt8] = Array(repeating: 9, count: 100)
        let body = ControlledBody()
        let recorded = Tally()
        _ = try #require(
            try store.fill(Digest.sha256(content), open: { (100, body.stream) }, finished: { _, _ in recorded.add() }))
        runner.close()
        // Closed: no new download, and nothing left behind by the refusal.
        #expect(throws: StorageError.closed) {
            _ = try store.fill(Digest.sha256([1]), open: { (1, ControlledBody().stream) }, finished: { _, _ in })
        }
        #expect(store.fillsInFlight == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.layout.temporaryDirectory.path).count == 1)
        // The running one goes on to its end, and only then does the runner return.
        body.send(content)
        body.finish()
        await running.value
        #expect(recorded.value == 1)
        #expect(store.length(of: Digest.sha256(content)) == 100)
    }

    @Test func cancellingTheRunnerCancelsItsDownloads() async throws {
        let runner = DownloadRunner.group()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-store-\(UInt64.random(in: 0...UInt64.max))")
        let store = try LocalBlobStore(layout: StorageLayout(root: root), downloads: runner)
        let running = Task { await runner.run() }
        let never = AsyncStream<ByteBuffer> { _ in }
        let opened = Tally()
        let fill = try #require(
            try store.fill(
                Digest.sha256([7]),
                open: {
                    opened.add()
                    return (1, never)
                }, finished: { _, _ in }))
        while opened.value == 0 { try await Task.sleep(for: .milliseconds(5)) }
        running.cancel()
        await running.value
        await #expect(throws: (any Error).self) { _ = try await fill.result() }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.layout.temporaryDirectory.path).isEmpty)
    }
}
