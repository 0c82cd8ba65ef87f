import ArchwayTesting
import Foundation
import RegistryClient
import Testing

/// Clients that try to make Archway work for nothing: wrong passwords, idle connections.
/// Bounds here are generous on purpose; `make bench` prints the real ratios.
extension HostileTests {
    @Suite(.serialized) struct HostileClientTests {
        static let oci = "application/vnd.oci.image.index.v1+json"

        /// The 99th percentile of `count` sequential GETs of `url`, in milliseconds.
        static func p99(_ url: String, count: Int) async throws -> Double {
            var samples: [Double] = []
            for _ in 0..<count {
                let started = ContinuousClock.now
                let answer = try await CacheEnvironment.fetch(url, headers: ["Accept": Self.oci])
                #expect(answer.status == 200)
                let elapsed = ContinuousClock.now - started
                samples.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
            }
            samples.sort()
            return samples[min(samples.count - 1, Int(Double(samples.count) * 0.99))]
        }

        @Test func madeUpAcceptValuesDoNotBypassTheTagCache() async throws {
            try await withUpstreamRegistry { upstream in
                _ = try await StandardImages.seed(upstream)
                let configuration = """
                    upstreams:
                      - name: registry.test
                        url: \(upstream.url)
                    default-upstream: registry.test

                    """
                try await withArchwayProcess(configuration: configuration) { archway in
                    let mark = upstream.accessLogMark()
                    for attempt in 0..<300 {
                        let accept = "\(Self.oci), application/x-made-up-\(attempt);q=0.\(attempt % 10), text/x-\(attempt)"
                        let answer = try await CacheEnvironment.fetch(
                            "\(archway.url)/v2/test/multi/manifests/1.0", headers: ["Accept": accept])
                        #expect(answer.status == 200)
                    }
                    // One upstream GET for the tag, whatever the client made up; Docker Hub would count
                    // every other one against the cluster's pull quota.
                    let gets = upstream.requestCount(method: "GET", pathSuffix: "/manifests/1.0", since: mark)
                    let heads = upstream.requestCount(method: "HEAD", pathSuffix: "/manifests/1.0", since: mark)
                    #expect(gets == 1, "\(gets) upstream GETs")
                    #expect(heads == 0)
                }
            }
        }

        @Test func wrongPasswordsDoNotStallOtherClients() async throws {
            try await withUpstreamRegistry { upstream in
                _ = try await StandardImages.seed(upstream)
                try await withTemporaryDirectory { directory in
                    // htpasswd -B's own cost range: verifying one password takes tens of milliseconds.
                    let configuration = try Robots.configuration(public: upstream.url, private: upstream.url, in: directory, cost: 10)
                    try await withArchwayProcess(configuration: configuration) { archway in
                        let warm = "\(archway.url)/v2/public.test/test/multi/manifests/1.0"
                        _ = try await Self.p99(warm, count: 5)
                        let quiet = try await Self.p99(warm, count: 100)

                        // 50 connections, each sending a new wrong password for a known user every 20 ms
                        // (new passwords defeat any memory of failures): 2 500 bcrypt verifications a
                        // second asked of a server that can do about 30.
                        let attack = Task {
                            try await HostileClients.run([
                                "wrong-passwords", "\(archway.url)/v2/private.test/test/multi/manifests/1.0", "--connections", "50",
                                "--seconds", "6", "--interval", "0.02",
                            ])
                        }
                        try await Task.sleep(for: .seconds(1))
                        let attacked = try await Self.p99(warm, count: 100)
                        let healthStarted = ContinuousClock.now
                        let health = try await CacheEnvironment.fetch("\(archway.url)/_archway/health")
                        let healthTime = ContinuousClock.now - healthStarted
                        let statuses = HostileClients.report(try await attack.value)?["statuses"] as? [String: Int] ?? [:]

                        #expect(health.status == 200)
                        #expect(healthTime < .seconds(2), "health took \(healthTime) under attack")
                        #expect(
                            attacked <= 10 * max(quiet, 50), "warm manifest p99 \(attacked) ms under attack, \(quiet) ms without")
                        #expect(statuses.keys.allSatisfy { $0 == "401" || $0 == "429" }, "\(statuses)")
                        #expect((statuses["429"] ?? 0) > 0, "the address was throttled: \(statuses)")
                        print("wrong passwords: p99 quiet \(quiet) ms, attacked \(attacked) ms, answers \(statuses)")
                    }
                }
            }
        }
    }
}
