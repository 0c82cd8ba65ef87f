import Cache
import Foundation
import OCI
import Testing

@Suite struct CatalogTests {
    static func descriptor(_ text: String, _ mediaType: MediaType = .ociManifest) -> Descriptor {
        let bytes = Data(text.utf8)
        return Descriptor(mediaType: mediaType, digest: Digest.sha256(bytes), size: Int64(bytes.count))
    }

    @Test func tagsAreKeptPerAcceptSet() async throws {
        let catalog = try SQLiteCatalog.inMemory()
        let oci = TagKey(upstream: "docker.io", repository: "library/app", tag: "1", accepting: ["b", "a", "a"])
        let docker = TagKey(upstream: "docker.io", repository: "library/app", tag: "1", accepting: ["c"])
        #expect(oci == TagKey(upstream: "docker.io", repository: "library/app", tag: "1", accepting: ["a", "b"]))
        let index = Self.descriptor("index", .ociIndex)
        let child = Self.descriptor("child", .dockerManifest)
        try await catalog.recordManifest(
            index, from: RepositoryKey(upstream: "docker.io", repository: try RepositoryName("library/app")), tag: oci,
            at: Date(timeIntervalSince1970: 100))
        try await catalog.recordManifest(
            child, from: RepositoryKey(upstream: "docker.io", repository: try RepositoryName("library/app")), tag: docker,
            at: Date(timeIntervalSince1970: 200))
        #expect(try await catalog.tag(oci)?.descriptor == index)
        #expect(try await catalog.tag(docker)?.descriptor == child)
        #expect(
            try await catalog.tagAnswers(upstream: "docker.io", repository: "library/app", tag: "1").map(\.descriptor) == [child, index])
        try await catalog.markValidated(oci, at: Date(timeIntervalSince1970: 300))
        #expect(try await catalog.tag(oci)?.validatedAt == Date(timeIntervalSince1970: 300))
        let app = RepositoryKey(upstream: "docker.io", repository: try RepositoryName("library/app"))
        #expect(try await catalog.sources(index.digest, under: app) == [LinkedSource(origin: app, isConfirmed: true)])
        #expect(
            try await catalog.sources(
                index.digest, under: RepositoryKey(upstream: "docker.io", repository: try RepositoryName("library/other"))
            ).isEmpty)
        // Removing content forgets the tags that named it.
        try await catalog.remove(index.digest)
        #expect(try await catalog.tag(oci) == nil)
        #expect(try await catalog.tag(docker) != nil)
    }

    @Test func leastRecentlyUsedFollowsBatchedAccesses() async throws {
        let catalog = try SQLiteCatalog.inMemory()
        let digests = (0..<3).map { Digest.sha256(Data("blob \($0)".utf8)) }
        for (index, digest) in digests.enumerated() {
            try await catalog.recordBlob(
                digest, size: 10, from: RepositoryKey(upstream: "u", repository: try RepositoryName("r")),
                at: Date(timeIntervalSince1970: Double(index)))
        }
        #expect(try await catalog.totalSize() == 30)
        catalog.noteAccess(digests[0], at: Date(timeIntervalSince1970: 50))
        #expect(try await catalog.leastRecentlyUsed(limit: 3).map(\.digest) == digests, "not written before the flush")
        try await catalog.flushAccesses()
        #expect(try await catalog.leastRecentlyUsed(limit: 3).map(\.digest) == [digests[1], digests[2], digests[0]])
    }
}

@Suite struct EvictorTests {
    @Test func evictsLeastRecentlyUsedAndSkipsContentInUse() async throws {
        let store = try temporaryStore()
        let catalog = try SQLiteCatalog.inMemory()
        var digests: [Digest] = []
        for index in 0..<4 {
            let bytes = Data(repeating: UInt8(index), count: 100)
            let digest = Digest.sha256(bytes)
            try await store.store(bytes, as: digest)
            try await catalog.recordBlob(
                digest, size: 100, from: RepositoryKey(upstream: "u", repository: try RepositoryName("r")),
                at: Date(timeIntervalSince1970: Double(index)))
            digests.append(digest)
        }
        let evictor = Evictor(store: store, catalog: catalog, maximumSize: 250)
        let reading = store.localReader(digests[0])
        let pass = try await evictor.evictIfNeeded()
        #expect(pass.removed == [digests[1], digests[2]], "the oldest is being read, so the next two go")
        #expect(pass.sizeAfter == 200)
        #expect(store.length(of: digests[0]) != nil && store.length(of: digests[1]) == nil)
        _ = reading
        #expect(try await Evictor(store: store, catalog: catalog, maximumSize: nil).evictIfNeeded().removed.isEmpty)
    }

    @Test func reconcileAdoptsUnknownFilesAndForgetsMissingOnes() async throws {
        let store = try temporaryStore()
        let catalog = try SQLiteCatalog.inMemory()
        let orphan = Data("orphan".utf8)
        try await store.store(orphan, as: Digest.sha256(orphan))
        let ghost = Digest.sha256(Data("ghost".utf8))
        try await catalog.recordBlob(ghost, size: 5, from: RepositoryKey(upstream: "u", repository: try RepositoryName("r")), at: Date())
        let evictor = Evictor(store: store, catalog: catalog, maximumSize: nil)
        let result = try await evictor.reconcile(at: Date())
        #expect(result.adopted == 1 && result.forgotten == 1)
        #expect(try await catalog.allDigests() == [Digest.sha256(orphan)])
    }
}
