import ArchwayTesting
import Dispatch
import Foundation
import Synchronization

/// `make cluster`: the scale-out product on one machine, offline. A docker-registry upstream
/// seeded with test images, Ceph's radosgw, PostgreSQL, three Archway replicas and nginx in
/// front, all on loopback, all stopped with Ctrl-C. Prints how to pull through it.
@main
struct Cluster {
    static func main() async {
        do {
            switch CommandLine.arguments.dropFirst().first {
            case "bench": try await bench()
            case "demo": try await demo()
            default: try await run()
            }
        } catch {
            FileHandle.standardError.write(Data("archway-cluster failed: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run() async throws {
        say("starting a docker-registry upstream, Ceph (radosgw), PostgreSQL, three Archway replicas and nginx ...")
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            let configuration = """
                upstreams:
                  - name: registry.test
                    url: \(upstream.url)
                default-upstream: registry.test

                """
            try await withArchwayFleet(configuration: configuration) { fleet in
                let front = fleet.front.host
                say(
                    """

                    Archway cluster: three replicas behind nginx at \(fleet.front.url)
                      replicas:   \(fleet.replicas.map(\.url).joined(separator: "  "))
                      upstream:   docker-registry at \(upstream.url), known as registry.test
                      bucket:     archway on radosgw at \(fleet.gateway.url)
                      catalog:    PostgreSQL at \(fleet.database.url)

                    Pull through the front (any client; skopeo here):
                      skopeo copy --src-tls-verify=false --all docker://\(front)/registry.test/\(images.multi.repository):\(images.multi.tag ?? "1.0") oci:/tmp/multi:1
                      skopeo inspect --tls-verify=false docker://\(front)/registry.test/\(images.singleARM64.repository):\(images.singleARM64.tag ?? "arm64")
                      curl -s \(fleet.front.url)/v2/registry.test/\(images.multi.repository)/tags/list

                    Each replica logs JSON to its folder (\(fleet.replicas[0].logFile.path), ...).
                    Ctrl-C stops everything.
                    """)
                await waitForInterrupt()
                say("\nstopping ...")
            }
        }
    }

    /// `archway-cluster bench`: the cluster section of `make bench`, printed and written to
    /// `.build/bench/cluster.json`.
    static func bench() async throws {
        let size = Int64(ProcessInfo.processInfo.environment["CLUSTER_BLOB_MIB"].flatMap(Int.init) ?? 256) << 20
        let rows = try await ClusterBench.run(blobSize: size, say: say)
        say("\n## cluster: Archway (3 replicas, radosgw, PostgreSQL) vs distribution's proxy (3 replicas, the same radosgw)\n")
        say("| | Archway | distribution | ratio |")
        say("|---|---|---|---|")
        for row in rows {
            let ratio = row.distribution.map { $0 == 0 ? "-" : String(format: "%.2fx", row.archway / $0) } ?? "-"
            say("| \(row.name) | \(format(row.archway, row.unit)) | \(row.distribution.map { format($0, row.unit) } ?? "-") | \(ratio) |")
        }
        let output = URL(fileURLWithPath: ".build/bench", isDirectory: true)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(rows).write(to: output.appendingPathComponent("cluster.json"))
    }

    static func format(_ value: Double, _ unit: String) -> String {
        switch unit {
        case "GETs": String(Int(value))
        case "ms": String(format: "%.0f ms", value)
        case "s": String(format: "%.2f s", value)
        default: String(format: "%.0f %@", value, unit)
        }
    }

    /// Writes a line at once (also into a file or a pipe, where `print` would buffer it).
    static func say(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Returns at SIGINT or SIGTERM.
    static func waitForInterrupt() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let fired = Fired()
            let sources = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
            for source in sources {
                source.setEventHandler {
                    guard fired.first() else { return }
                    for source in sources { source.cancel() }
                    continuation.resume()
                }
                source.resume()
            }
        }
    }
}

/// True the first time only.
final class Fired: Sendable {
    private let done = Mutex(false)

    func first() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
