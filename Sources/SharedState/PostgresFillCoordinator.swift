import Cache
import Foundation
import Logging
import OCI
import PostgresNIO
import Synchronization

/// One download per digest for the whole fleet, elected in PostgreSQL (`fill_lease`).
///
/// A claim is one statement: it inserts the lease, or takes over one that expired, that this
/// replica already holds, or whose holder this replica could not reach; otherwise it answers
/// who holds it. Expiry is the database's clock, never a replica's. The holder renews its lease
/// every third of `ttl` while it downloads, and deletes it when done; a holder that dies stops
/// renewing, and its lease is free `ttl` later.
public struct PostgresFillCoordinator: FillCoordinator {
    let catalog: PostgresCatalog
    /// This process: the replica's name and an id of this run (a restarted replica is another holder).
    public let holder: String
    /// Where peers reach this replica (`http://10.0.0.5:5000`).
    public let url: String
    public let ttl: Duration

    public init(catalog: PostgresCatalog, replica: String, url: String, ttl: Duration = .seconds(10)) {
        self.catalog = catalog
        self.holder = "\(replica)/\(catalog.instance.prefix(8))"
        self.url = url
        self.ttl = ttl
    }

    public func claim(_ digest: Digest, scope: RepositoryKey?, replacing unreachable: String?) async throws -> FillClaim {
        let (text, seconds, holder, url) = (digest.description, Double(ttl.components.seconds), holder, url)
        let scopeText = scope?.description
        let replaced = unreachable ?? ""
        // A lease released between the insert and the read is claimed again, a few times at most.
        for _ in 0..<3 {
            let current: (holder: String, url: String, scope: String?)?? = try await catalog.call("claim a download") { client in
                let rows = try await client.query(
                    """
                    INSERT INTO fill_lease (digest, holder, url, scope, expires)
                    VALUES (\(text), \(holder), \(url), \(scopeText), EXTRACT(EPOCH FROM clock_timestamp()) + \(seconds))
                    ON CONFLICT (digest) DO UPDATE
                        SET holder = EXCLUDED.holder, url = EXCLUDED.url, scope = EXCLUDED.scope, expires = EXCLUDED.expires
                        WHERE fill_lease.expires < EXTRACT(EPOCH FROM clock_timestamp())
                            OR fill_lease.holder = EXCLUDED.holder OR fill_lease.holder = \(replaced)
                    RETURNING holder
                    """)
                for try await _ in rows.decode(String.self) { return .some(nil) }
                let holders = try await client.query("SELECT holder, url, scope FROM fill_lease WHERE digest = \(text)")
                for try await row in holders.decode((String, String, String?).self) { return .some(row) }
                return nil  // released meanwhile
            }
            switch current {
            case .some(.none): return .owner(PostgresFillLease(coordinator: self, digest: digest))
            case .some(.some(let other)):
                return .peer(holder: other.holder, url: other.url, scope: other.scope.flatMap(RepositoryKey.init(parsing:)))
            case .none: continue
            }
        }
        throw CatalogUnavailable(operation: "claim a download", reason: "its lease kept changing hands")
    }

    /// Pushes the lease's expiry `ttl` past now, if this replica still holds it.
    func renew(_ digest: Digest) async throws {
        let (text, seconds, holder) = (digest.description, Double(ttl.components.seconds), holder)
        try await catalog.execute("renew a download's lease") { client in
            try await client.query(
                """
                UPDATE fill_lease SET expires = EXTRACT(EPOCH FROM clock_timestamp()) + \(seconds)
                WHERE digest = \(text) AND holder = \(holder)
                """)
        }
    }

    func release(_ digest: Digest) async throws {
        let (text, holder) = (digest.description, holder)
        try await catalog.execute("release a download's lease") { client in
            try await client.query("DELETE FROM fill_lease WHERE digest = \(text) AND holder = \(holder)")
        }
    }
}

/// A held lease: renewed on its own task until released.
final class PostgresFillLease: FillLease {
    let coordinator: PostgresFillCoordinator
    let digest: Digest
    private let renewal: Task<Void, Never>

    init(coordinator: PostgresFillCoordinator, digest: Digest) {
        self.coordinator = coordinator
        self.digest = digest
        renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: coordinator.ttl / 3)
                if Task.isCancelled { break }
                do {
                    try await coordinator.renew(digest)
                } catch {
                    coordinator.catalog.logger.warning(
                        "could not renew a download's lease", metadata: ["digest": "\(digest)", "error": "\(error)"])
                }
            }
        }
    }

    func release() async {
        renewal.cancel()
        do {
            try await coordinator.release(digest)
        } catch {
            // It expires by itself.
            coordinator.catalog.logger.warning(
                "could not release a download's lease", metadata: ["digest": "\(digest)", "error": "\(error)"])
        }
    }

    deinit {
        renewal.cancel()
    }
}
