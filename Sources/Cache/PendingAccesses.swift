import Foundation
import OCI
import Synchronization

/// Access times noted in memory until a catalog writes them in one batch, so a cache hit costs
/// no database write. The latest time of each digest is kept.
public final class PendingAccesses: Sendable {
    private let noted = Mutex<[Digest: Date]>([:])

    public init() {}

    public func note(_ digest: Digest, at date: Date) {
        noted.withLock { $0[digest] = date }
    }

    /// Everything noted, emptied.
    public func take() -> [Digest: Date] {
        noted.withLock { noted in
            defer { noted = [:] }
            return noted
        }
    }

    /// Notes again what could not be written (unless a later time was noted meanwhile).
    public func putBack(_ accesses: [Digest: Date]) {
        noted.withLock { noted in
            for (digest, date) in accesses where noted[digest].map({ $0 < date }) ?? true { noted[digest] = date }
        }
    }
}
