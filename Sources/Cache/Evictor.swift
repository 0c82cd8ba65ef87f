import Foundation
import OCI

/// Keeps the store under its size limit by removing the least recently used content, never
/// content that is being filled or read.
public struct Evictor: Sendable {
    public let store: any BlobStore
    public let catalog: any Catalog
    /// Bytes the store may hold; nil: no limit.
    public let maximumSize: Int64?

    public init(store: any BlobStore, catalog: any Catalog, maximumSize: Int64?) {
        self.store = store
        self.catalog = catalog
        self.maximumSize = maximumSize
    }

    /// What one pass did.
    public struct Pass: Sendable, Hashable {
        public var removed: [Digest] = []
        public var freedBytes: Int64 = 0
        public var sizeAfter: Int64 = 0
    }

    /// Removes least recently used content until the store fits (or only busy content is left).
    @discardableResult
    public func evictIfNeeded() async throws -> Pass {
        try await catalog.flushAccesses()
        var pass = Pass()
        var size = try await catalog.totalSize()
        guard let maximumSize, size > maximumSize else {
            pass.sizeAfter = size
            return pass
        }
        var skipped: Set<Digest> = []
        while size > maximumSize {
            let candidates = try await catalog.leastRecentlyUsed(limit: skipped.count + 64).filter { !skipped.contains($0.digest) }
            if candidates.isEmpty { break }
            for candidate in candidates where size > maximumSize {
                guard await store.remove(candidate.digest) else {
                    skipped.insert(candidate.digest)
                    continue
                }
                try await catalog.remove(candidate.digest)
                size -= candidate.size
                pass.removed.append(candidate.digest)
                pass.freedBytes += candidate.size
            }
        }
        pass.sizeAfter = size
        return pass
    }

    /// Brings the catalog and the files into agreement after a crash: files the catalog does not
    /// know are adopted, catalog entries whose file is gone are forgotten.
    public func reconcile(at date: Date) async throws -> (adopted: Int, forgotten: Int) {
        let known = try await catalog.allDigests()
        let onDisk = try await store.storedDigests()
        var adopted = 0
        for digest in onDisk.subtracting(known) {
            guard let size = await store.length(of: digest) else { continue }
            try await catalog.adopt(digest, size: size, at: date)
            adopted += 1
        }
        var forgotten = 0
        for digest in known.subtracting(onDisk) where await !store.isBusy(digest) {
            try await catalog.remove(digest)
            forgotten += 1
        }
        return (adopted, forgotten)
    }
}
