import Foundation
import OCI
import Testing

@testable import Proxy

/// What the operator page's "most pulled" table counts: every manifest answer, by repository and
/// by tag, with the digest a tag gave last; a repository keeps its 64 most recent tags.
struct PullStatisticsTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func pullsAreCountedByRepositoryAndTagWithTheLastDigest() throws {
        let statistics = PullStatistics()
        let app = RepositoryKey(upstream: "docker.io", repository: try RepositoryName("library/app"))
        let other = RepositoryKey(upstream: "ghcr.io", repository: try RepositoryName("org/other"))
        let first = Digest.sha256(Data("one".utf8))
        let second = Digest.sha256(Data("two".utf8))
        statistics.pulled(app, tag: "1.0", digest: first, at: start)
        statistics.pulled(app, tag: "1.0", digest: second, at: start.addingTimeInterval(5))
        statistics.pulled(app, tag: nil, digest: first, at: start.addingTimeInterval(9))
        statistics.pulled(other, tag: "latest", digest: first, at: start)

        let ranked = statistics.mostPulled(10)
        #expect(ranked.map(\.key) == [app, other])
        let counted = try #require(ranked.first)
        #expect(counted.pulls == 3 && counted.lastPull == start.addingTimeInterval(9))
        #expect(counted.tags.count == 1, "a pull by digest counts for the repository only")
        let tag = try #require(counted.tags["1.0"])
        #expect(tag.pulls == 2 && tag.digest == second && tag.lastPull == start.addingTimeInterval(5))
        #expect(statistics.mostPulled(1).map(\.key) == [app])
    }

    @Test func aRepositoryKeepsItsMostRecentlyPulledTags() throws {
        let statistics = PullStatistics()
        let app = RepositoryKey(upstream: "docker.io", repository: try RepositoryName("library/app"))
        let digest = Digest.sha256(Data("image".utf8))
        for index in 0..<PullStatistics.tagsKept {
            statistics.pulled(app, tag: "v\(index)", digest: digest, at: start.addingTimeInterval(Double(index)))
        }
        // v0 is pulled again: v1 is now the oldest, and the next new tag replaces it.
        statistics.pulled(app, tag: "v0", digest: digest, at: start.addingTimeInterval(1000))
        statistics.pulled(app, tag: "new", digest: digest, at: start.addingTimeInterval(1001))
        let tags = try #require(statistics.mostPulled(1).first).tags
        #expect(tags.count == PullStatistics.tagsKept)
        #expect(tags["v1"] == nil && tags["v0"]?.pulls == 2 && tags["new"]?.pulls == 1 && tags["v2"] != nil)
    }
}
