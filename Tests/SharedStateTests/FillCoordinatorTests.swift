import ArchwayTesting
import Cache
import Foundation
import OCI
import SharedState
import Testing

/// The election of one download per digest, on a real PostgreSQL.
@Suite(.serialized) struct FillCoordinatorTests {
    let digest = Digest.sha256(Data("a cold layer".utf8))
    let scope = RepositoryKey(upstream: "docker.io", repository: try! RepositoryName("library/app"))

    func holderOf(_ claim: FillClaim) -> String? {
        if case .peer(let holder, _, _) = claim { return holder }
        return nil
    }

    @Test func oneReplicaHoldsADownloadUntilItReleasesItOrDies() async throws {
        try await withPostgres { server in
            try await withPostgresCatalog(server) { catalog in
                // A TTL long enough that a busy machine renews in time: renewals come every 3.3 s,
                // and under a full test run one PostgreSQL call has taken over 5 s (a 6 s TTL
                // expired once in a fresh-clone run).
                let a = PostgresFillCoordinator(catalog: catalog, replica: "a", url: "http://a:5000", ttl: .seconds(10))
                let b = PostgresFillCoordinator(catalog: catalog, replica: "b", url: "http://b:5000", ttl: .seconds(10))
                guard case .owner(let lease) = try await a.claim(digest, scope: scope, replacing: nil) else {
                    Issue.record("the first claim is not the owner's")
                    return
                }
                // b is told who downloads, where, and for whom.
                guard case .peer(let holder, let url, let leaseScope) = try await b.claim(digest, scope: nil, replacing: nil) else {
                    Issue.record("a second replica got the download too")
                    return
                }
                #expect(holder == a.holder && url == "http://a:5000" && leaseScope == scope)
                // Renewed while held: still a's after the TTL.
                try await Task.sleep(for: .seconds(11))
                #expect(holderOf(try await b.claim(digest, scope: nil, replacing: nil)) == a.holder)
                // Released: b gets it at once.
                await lease.release()
                guard case .owner(let second) = try await b.claim(digest, scope: nil, replacing: nil) else {
                    Issue.record("a released download was not free")
                    return
                }
                #expect(holderOf(try await a.claim(digest, scope: nil, replacing: nil)) == b.holder)
                // a could not reach b: it takes the download over.
                guard case .owner = try await a.claim(digest, scope: nil, replacing: b.holder) else {
                    Issue.record("an unreachable holder was not replaced")
                    return
                }
                #expect(holderOf(try await b.claim(digest, scope: nil, replacing: nil)) == a.holder)
                await second.release()  // b's lease is no longer b's: releasing it does nothing
                #expect(holderOf(try await b.claim(digest, scope: nil, replacing: nil)) == a.holder)
            }
        }
    }

    @Test func aDeadHoldersLeaseExpires() async throws {
        try await withPostgres { server in
            try await withPostgresCatalog(server) { catalog in
                let a = PostgresFillCoordinator(catalog: catalog, replica: "a", url: "http://a:5000", ttl: .seconds(1))
                let b = PostgresFillCoordinator(catalog: catalog, replica: "b", url: "http://b:5000", ttl: .seconds(1))
                try await catalog.migrate()
                // A lease that nobody renews (its holder is gone): live for a minute, then its
                // expiry passes (set in the past, not waited for: a busy machine cannot blur it).
                _ = try await server.psql(
                    "INSERT INTO fill_lease VALUES ('\(digest)', 'dead/0', 'http://dead:5000', NULL, EXTRACT(EPOCH FROM clock_timestamp()) + 60)"
                )
                #expect(holderOf(try await a.claim(digest, scope: nil, replacing: nil)) == "dead/0")
                _ = try await server.psql("UPDATE fill_lease SET expires = EXTRACT(EPOCH FROM clock_timestamp()) - 1")
                guard case .owner(let lease) = try await a.claim(digest, scope: nil, replacing: nil) else {
                    Issue.record("an expired lease was not taken over")
                    return
                }
                #expect(holderOf(try await b.claim(digest, scope: nil, replacing: nil)) == a.holder)
                await lease.release()
            }
        }
    }
}
