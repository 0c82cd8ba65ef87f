import ArchwayTesting
import Foundation
import NIOCore
import ObjectStorage
import RegistryClient
import Synchronization

/// `make bench`'s cluster section: Archway's fleet (three replicas, a bucket, PostgreSQL) against
/// distribution's proxy with three replicas on one bucket of the same radosgw, each behind its own
/// nginx, side by side in one run with the same upstream.
enum ClusterBench {
    /// One measured row: Archway's value, distribution's, and how to read them.
    struct Row: Codable {
        var name: String
        var unit: String
        var archway: Double
        var distribution: Double?
        var lowerIsBetter: Bool
    }

    static func run(blobSize: Int64, say: (String) -> Void) async throws -> [Row] {
        try await withUpstreamRegistry { upstream in
            let configuration = """
                upstreams:
                  - name: registry.test
                    url: \(upstream.url)
                default-upstream: registry.test

                """
            return try await withArchwayFleet(configuration: configuration) { fleet in
                try await fleet.gateway.client(bucket: "distribution").createBucket()
                return try await withDistributionFleet(upstream: upstream, gateway: fleet.gateway) { distribution in
                    try await measure(upstream: upstream, fleet: fleet, distribution: distribution, blobSize: blobSize, say: say)
                }
            }
        }
    }

    static func measure(
        upstream: UpstreamRegistry, fleet: ArchwayFleet, distribution: DistributionFleet, blobSize: Int64, say: (String) -> Void
    ) async throws -> [Row] {
        var rows: [Row] = []
        // Cold: 8 clients through each front at once.
        say("cold blob, 8 clients over 3 replicas ...")
        var cold: [String: (gets: Int, slowest: Double)] = [:]
        for (name, front, path) in [
            ("archway", fleet.front.url, "/v2/registry.test/bench/cold"), ("distribution", distribution.front.url, "/v2/bench/cold"),
        ] {
            let blob = try await push(upstream, repository: "bench/cold", size: 64 << 20, seed: UInt64(name.count) * 101)
            let url = "\(front)\(path)/blobs/\(blob.digest)"
            let started = ContinuousClock.now
            let firstBytes = try await withThrowingTaskGroup(of: Double.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let (first, digest) = try await download(url, started: started)
                        guard digest == blob.digest else { throw HarnessError("\(name): wrong bytes from \(url)") }
                        return first
                    }
                }
                var firsts: [Double] = []
                for try await first in group { firsts.append(first) }
                return firsts
            }
            cold[name] = (upstream.requestCount(method: "GET", pathSuffix: "/blobs/\(blob.digest)"), firstBytes.max() ?? 0)
        }
        rows.append(
            Row(
                name: "cold 64 MiB blob, 8 clients over 3 replicas: upstream GETs", unit: "GETs",
                archway: Double(cold["archway"]!.gets), distribution: Double(cold["distribution"]!.gets), lowerIsBetter: true))
        rows.append(
            Row(
                name: "the same: slowest first byte", unit: "ms", archway: cold["archway"]!.slowest * 1000,
                distribution: cold["distribution"]!.slowest * 1000, lowerIsBetter: true))

        // Warm: a blob one replica fetched, read on another: Archway's first read copies it from
        // the bucket, later ones come from its disk; distribution reads the bucket every time.
        say("warm \(blobSize >> 20) MiB blob from the bucket and from a replica's disk ...")
        let blob = try await push(upstream, repository: "bench/warm", size: blobSize, seed: 7)
        let archwayPath = "/v2/registry.test/bench/warm/blobs/\(blob.digest)"
        let distributionPath = "/v2/bench/warm/blobs/\(blob.digest)"
        _ = try await download(fleet.replicas[0].url + archwayPath, started: .now)
        _ = try await download(distribution.replicas[0].url + distributionPath, started: .now)
        let reader = fleet.replicas[1]
        let fromBucket = try await measuredDownload(reader.url + archwayPath, pid: reader.pid, size: blob.size)
        var fromDisk: [Measured] = []
        var distributionReads: [Measured] = []
        for _ in 0..<3 {
            fromDisk.append(try await measuredDownload(reader.url + archwayPath, pid: reader.pid, size: blob.size))
            let replica = distribution.replicas[1]
            distributionReads.append(try await measuredDownload(replica.url + distributionPath, pid: replica.pid, size: blob.size))
        }
        let distributionCPU = median(distributionReads.map(\.cpuPerGiB))
        let distributionRate = median(distributionReads.map(\.mibPerSecond))
        rows.append(
            Row(
                name: "warm blob from the bucket: server CPU per GiB", unit: "s", archway: fromBucket.cpuPerGiB,
                distribution: distributionCPU, lowerIsBetter: true))
        rows.append(
            Row(
                name: "warm blob from the bucket: MiB/s", unit: "MiB/s", archway: fromBucket.mibPerSecond,
                distribution: distributionRate, lowerIsBetter: false))
        rows.append(
            Row(
                name: "warm blob from a replica's disk (Archway) vs the bucket (distribution): server CPU per GiB", unit: "s",
                archway: median(fromDisk.map(\.cpuPerGiB)), distribution: distributionCPU, lowerIsBetter: true))
        rows.append(
            Row(
                name: "the same: MiB/s", unit: "MiB/s", archway: median(fromDisk.map(\.mibPerSecond)), distribution: distributionRate,
                lowerIsBetter: false))
        return rows
    }

    // MARK: - Measuring

    struct Measured {
        var cpuPerGiB: Double
        var mibPerSecond: Double
    }

    static func measuredDownload(_ url: String, pid: Int32?, size: Int64) async throws -> Measured {
        guard let pid else { throw HarnessError("the server of \(url) is not running") }
        let before = cpuSeconds(pid)
        let started = ContinuousClock.now
        _ = try await download(url, started: started)
        let seconds = seconds(started.duration(to: .now))
        let gib = Double(size) / Double(1 << 30)
        return Measured(cpuPerGiB: (cpuSeconds(pid) - before) / gib, mibPerSecond: Double(size) / Double(1 << 20) / seconds)
    }

    /// Downloads `url` whole; seconds from `started` to the first byte, and the body's digest.
    static func download(_ url: String, started: ContinuousClock.Instant) async throws -> (firstByte: Double, digest: String) {
        let response = try await CurlTransport().send(UpstreamRequest(url: url))
        guard response.status == 200 else { throw HarnessError("\(url) answered \(response.status)") }
        var hasher = StreamingSHA256()
        var first: Double?
        for try await chunk in response.body {
            if first == nil { first = seconds(started.duration(to: .now)) }
            chunk.withUnsafeReadableBytes { hasher.update($0) }
        }
        return (first ?? seconds(started.duration(to: .now)), hasher.finalizeDigest())
    }

    /// User and system CPU seconds of a process, from `/proc/<pid>/stat`.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    static func push(_ upstream: UpstreamRegistry, repository: String, size: Int64, seed: UInt64) async throws -> BlobRef {
        try await withTemporaryDirectory { (directory: URL) async throws -> BlobRef in
            try await RegistryUploader(upstream).pushBlob(
                repository: repository, file: try makeLargeBlobFile(size: size, seed: seed, in: directory))
        }
    }
}

/// distribution's registry in proxy mode, three replicas on one bucket of a radosgw (its S3
/// driver, redirects off so the bytes go through it), behind nginx.
struct DistributionFleet: Sendable {
    struct Replica: Sendable {
        let url: String
        let host: String
        let process: ChildProcess
        var pid: Int32? { process.isRunning ? process.pid : nil }
    }

    let replicas: [Replica]
    let front: NginxFront
}

func withDistributionFleet<T>(
    upstream: UpstreamRegistry, gateway: RadosGateway, isolation: isolated (any Actor)? = #isolation,
    _ body: (DistributionFleet) async throws -> T
) async throws -> T {
    let executable = try requireProgram("docker-registry")
    return try await withTemporaryDirectory(prefix: "archway-distribution") { directory in
        var replicas: [DistributionFleet.Replica] = []
        defer { for replica in replicas { replica.process.signal(SIGKILL) } }
        for index in 0..<3 {
            let port = try freeLoopbackPort()
            let file = directory.appendingPathComponent("config-\(index).yml")
            try """
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: true
            storage:
              s3:
                accesskey: \(gateway.accessKey)
                secretkey: \(gateway.secretKey)
                region: us-east-1
                regionendpoint: \(gateway.url)
                bucket: distribution
                secure: false
                v4auth: true
                rootdirectory: /
              cache:
                blobdescriptor: inmemory
              redirect:
                disable: true
            http:
              addr: 127.0.0.1:\(port)
              secret: archway-bench-secret
            proxy:
              remoteurl: \(upstream.url)

            """.write(to: file, atomically: true, encoding: .utf8)
            // The AWS SDK inside fails on a custom CA bundle with its plain-HTTP transport: none here.
            let process = try ChildProcess.start(
                executable, ["serve", file.path], environment: ["AWS_CA_BUNDLE": ""],
                outputFile: directory.appendingPathComponent("registry-\(index).log"))
            let replica = DistributionFleet.Replica(url: "http://127.0.0.1:\(port)", host: "127.0.0.1:\(port)", process: process)
            replicas.append(replica)
            try await waitUntil(timeout: .seconds(30), "distribution's proxy on port \(port)") {
                guard process.isRunning else { return true }
                return await httpStatus(replica.url + "/v2/") == 200
            }
            guard process.isRunning else { throw HarnessError("distribution's proxy exited: \(process.output().suffix(2000))") }
        }
        let started = replicas
        return try await withNginxFront(backends: started.map(\.host)) { front in
            try await body(DistributionFleet(replicas: started, front: front))
        }
    }
}
