import Foundation
import OCI
import Proxy
import Testing

@testable import ProxyServer

@Suite struct OperatorPageRenderingTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// The sections as the JSON API would give them (the snapshot types are made by the read path).
    static func decode<T: Decodable>(_ type: T.Type, _ json: String) -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try! decoder.decode(type, from: Data(json.utf8))
    }

    static func quoted(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }

    static func data(error: String, suggestion: String, rule: String) -> OperatorPageData {
        let digest = Digest.sha256(Data("x".utf8)).description
        let traffic = #"{"hits":3,"misses":1,"stale":0,"bytesServed":5242880,"bytesFetched":1048576,"hitRatio":0.75}"#
        let overview = decode(
            OperatorSnapshot.Overview.self,
            #"""
            {"cacheBytes":3221225472,"cacheLimit":10737418240,"lastHour":\#(traffic),"lastDay":\#(traffic),"minutes":[],"hours":[],
             "downloads":[{"digest":"\#(digest)","repository":"docker.io/library/app","expected":100,"written":40,"startedAt":"2027-01-15T08:00:00Z"}]}
            """#)
        let upstreams = decode(
            [OperatorSnapshot.Upstream].self,
            #"[{"name":"docker.io","aliases":[],"isPrivate":false,"reachable":false,"lastError":\#(quoted(error)),"lastErrorAt":"2027-01-15T08:00:00Z","averageLatencyMilliseconds":12,"rateLimitRemaining":76}]"#
        )
        let images = decode(OperatorSnapshot.Images.self, #"{"mostPulled":[],"cached":[],"page":1,"pageSize":50,"total":0}"#)
        let policies = decode(
            [OperatorSnapshot.Policy].self,
            #"[{"name":\#(quoted(rule)),"repository":"docker.io/**","tags":[],"location":"a.yaml:3","members":["{repository}:arm64-{tag}"],"synthesized":[]}]"#
        )
        let mismatches = decode(
            [OperatorSnapshot.Mismatch].self,
            #"[{"repository":"docker.io/library/app","reference":"1","kind":"single-platform","clientPlatform":"linux/arm64","imagePlatforms":"linux/amd64","count":2,"lastSeen":"2027-01-15T08:00:00Z","suggestion":\#(quoted(suggestion))}]"#
        )
        return OperatorPageData(
            overview: overview, upstreams: upstreams, images: images, policies: policies, mismatches: mismatches, now: now)
    }

    @Test func everyOutsideStringIsEscaped() {
        let hostile = #"<script>alert("x")</script>&'"#
        let html = OperatorPage.render(Self.data(error: hostile, suggestion: hostile, rule: hostile))
        #expect(!html.contains("<script>alert"))
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"))
        // The page's only script is its own file.
        #expect(html.components(separatedBy: "<script").count - 1 == 1)
        #expect(html.contains(#"<script src="/_archway/page.js" defer></script>"#))
    }

    @Test func numbersAndBars() {
        let html = OperatorPage.render(Self.data(error: "connection refused", suggestion: "", rule: "app"))
        #expect(html.contains("3.0 GiB of 10.0 GiB"))
        #expect(html.contains("hit ratio 75%"))
        #expect(html.contains(#"<progress value="40" max="100"></progress>"#))
        #expect(html.contains(#"data-written="40""#))
        #expect(html.contains(#"<span class="bad">unreachable</span>"#))
        #expect(html.contains("<td>76</td>"))
    }

    @Test func aChartScalesToItsLargestBucket() {
        let buckets = [
            TrafficHistoryProbe.bucket(minute: 1, served: 100, fetched: 50), TrafficHistoryProbe.bucket(minute: 2, served: 0, fetched: 0),
        ]
        let svg = OperatorPage.chart(buckets, id: "c")
        #expect(svg.components(separatedBy: "<rect").count - 1 == 2)
        #expect(svg.contains(#"class="served" x="0.0" y="2.0""#))
    }

    @Test func operatorRoutes() throws {
        #expect(try RegistryRoute(path: "/_archway/") == .operatorPage)
        #expect(try RegistryRoute(path: "/_archway") == .operatorPage)
        #expect(try RegistryRoute(path: "/_archway/api/images") == .operatorAPI(.images))
        #expect(try RegistryRoute(path: "/_archway/api/secrets") == .notFound)
        #expect(try RegistryRoute(path: "/_archway/page.js") == .operatorAsset(.script))
        #expect(try RegistryRoute(path: "/_archway/page.js").isOperational)
        #expect(try RegistryRoute(path: "/_archway/health").isOperational)
        #expect(try RegistryRoute(path: "/_archway/ready").isProbe)
        #expect(try !RegistryRoute(path: "/metrics").isProbe)
    }
}

/// Buckets for the chart, through the type's Codable form (its initializer is the history's own).
enum TrafficHistoryProbe {
    static func bucket(minute: Int, served: Int64, fetched: Int64) -> TrafficHistory.Bucket {
        let json = #"{"minute":\#(minute),"hits":0,"misses":0,"stale":0,"bytesServed":\#(served),"bytesFetched":\#(fetched)}"#
        return try! JSONDecoder().decode(TrafficHistory.Bucket.self, from: Data(json.utf8))
    }
}

@Suite struct ShortLivedCacheTests {
    @Test func answersAreKeptForTheirLifetimeAndBoundedInNumber() {
        let cache = ShortLivedCache<Int, String>(lifetime: 2, capacity: 3)
        let start = Date(timeIntervalSince1970: 1000)
        cache.store("one", for: 1, now: start)
        #expect(cache.fresh(1, now: start.addingTimeInterval(1.9)) == "one")
        #expect(cache.fresh(1, now: start.addingTimeInterval(2)) == nil, "expired")
        // Full: the expired go first, then the oldest.
        for key in 2...4 { cache.store("\(key)", for: key, now: start.addingTimeInterval(1 + Double(key) / 10)) }
        #expect(cache.fresh(1, now: start.addingTimeInterval(1.5)) == nil, "the oldest made room for the third")
        cache.store("five", for: 5, now: start.addingTimeInterval(2.5))
        #expect(cache.fresh(2, now: start.addingTimeInterval(2.5)) == nil)
        #expect(cache.fresh(3, now: start.addingTimeInterval(2.5)) == "3")
        #expect(cache.fresh(4, now: start.addingTimeInterval(2.5)) == "4")
        #expect(cache.fresh(5, now: start.addingTimeInterval(2.5)) == "five")
    }
}
