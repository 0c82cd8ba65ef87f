import OCI

/// Elects one download per digest among replicas that share a store, so a cold blob crosses the
/// internet once for the whole fleet.
///
/// A replica claims a digest before it downloads it. It gets either the download (a lease, kept
/// alive until released; it expires if the replica dies) or the address of the replica that
/// holds it, whose growing download it then streams. A holder that cannot be reached is
/// replaced: its lease is taken over.
public protocol FillCoordinator: Sendable {
    /// Claims the download of `digest`, for `scope` (the repository it is fetched for).
    /// `unreachable` names a holder this replica failed to reach: its lease is taken over.
    func claim(_ digest: Digest, scope: RepositoryKey?, replacing unreachable: String?) async throws -> FillClaim
}

/// Who downloads a digest.
public enum FillClaim: Sendable {
    /// This replica: download, and release the lease when done.
    case owner(any FillLease)
    /// Another replica, reachable at `url` (its advertised base URL), downloading for `scope`.
    case peer(holder: String, url: String, scope: RepositoryKey?)
}

/// A replica's claim on a download, alive until released.
public protocol FillLease: Sendable {
    /// Gives the download up (done, or failed): another replica may claim it at once.
    func release() async
}
