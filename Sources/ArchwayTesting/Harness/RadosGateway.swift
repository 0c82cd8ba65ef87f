import Foundation
import Synchronization

/// A real S3 endpoint: Ceph's radosgw over a throwaway cluster (one monitor, one OSD on
/// `memstore`, no manager), every file under one temporary folder, on free loopback ports, with an
/// S3 user whose keys are fixed. Ready in about 1.5 s. radosgw checks signatures as strictly as
/// AWS. Stopped by SIGKILL of the three daemons (their data is throwaway), by pid.
public final class RadosGateway: Sendable {
    public let accessKey = "ARCHWAYACCESSKEY0001"
    public let secretKey = "archwaysecretkey0000000000000000000000001"
    /// `127.0.0.1:PORT`
    public let host: String
    /// `http://127.0.0.1:PORT`
    public let url: String
    public let directory: URL
    private let daemons = Mutex<[ChildProcess]>([])
    /// radosgw alone (the S3 endpoint), which a test may stop and start again.
    private let gatewayDaemon = Mutex<(program: String, configuration: String, child: ChildProcess?)?>(nil)

    private init(port: Int, directory: URL) {
        host = "127.0.0.1:\(port)"
        url = "http://127.0.0.1:\(port)"
        self.directory = directory
    }

    deinit {
        for daemon in daemons.withLock({ $0 }) { daemon.signal(SIGKILL) }
    }

    /// Starts the cluster and radosgw; returns once radosgw answers HTTP. A start that fails (a
    /// port taken by another test between choosing and binding it, a monitor too slow on a busy
    /// machine) is tried again from scratch, with other ports, twice.
    public static func start() async throws -> RadosGateway {
        var attempt = 1
        while true {
            do {
                return try await startOnce()
            } catch {
                guard attempt < 3 else { throw error }
                attempt += 1
            }
        }
    }

    private static func startOnce() async throws -> RadosGateway {
        let programs = try ["monmaptool", "ceph-mon", "ceph", "ceph-osd", "radosgw", "radosgw-admin"].map(requireProgram)
        let (monmaptool, monitor, ceph, osd, radosgw, admin) = (
            programs[0], programs[1], programs[2], programs[3], programs[4], programs[5]
        )
        let directory = try makeTemporaryDirectory(prefix: "archway-ceph")
        let gateway = RadosGateway(port: try freeLoopbackPort(), directory: directory)
        do {
            for folder in ["mon", "osd", "run", "log", "rgw", "crash"] {
                try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            let fsid = UUID().uuidString.lowercased()
            let monitorPort = try freeLoopbackPort()
            let configuration = directory.appendingPathComponent("ceph.conf").path
            try gateway.configuration(fsid: fsid, monitorPort: monitorPort).write(toFile: configuration, atomically: true, encoding: .utf8)
            let monmap = directory.appendingPathComponent("monmap").path
            try await run(monmaptool, ["--create", "--fsid", fsid, "--addv", "a", "[v2:127.0.0.1:\(monitorPort)]", monmap]).requireSuccess()
            try await run(monitor, ["-c", configuration, "-i", "a", "--mkfs", "--monmap", monmap]).requireSuccess()
            try gateway.launch(monitor, ["-c", configuration, "-i", "a", "-f"], log: "mon.out")
            // A port taken between choosing and binding would have the tools talk to another
            // cluster (there is no authentication): make sure this one answers.
            let answered = try await run(ceph, ["-c", configuration, "--connect-timeout", "10", "fsid"], timeout: .seconds(30))
                .requireSuccess().stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard answered == fsid else { throw HarnessError("the monitor on port \(monitorPort) is another cluster's (\(answered))") }
            let osdID = UUID().uuidString.lowercased()
            let created = try await run(ceph, ["-c", configuration, "--connect-timeout", "10", "osd", "new", osdID], timeout: .seconds(30))
                .requireSuccess()
            let id = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent("osd/ceph-\(id)"), withIntermediateDirectories: true)
            try await run(osd, ["-c", configuration, "-i", id, "--mkfs", "--osd-uuid", osdID], timeout: .seconds(60)).requireSuccess()
            try gateway.launch(osd, ["-c", configuration, "-i", id, "-f"], log: "osd.out")
            gateway.gatewayDaemon.withLock { $0 = (radosgw, configuration, nil) }
            try gateway.launchGateway()
            try await run(
                admin,
                [
                    "-c", configuration, "user", "create", "--uid=archway", "--display-name=archway", "--access-key=\(gateway.accessKey)",
                    "--secret-key=\(gateway.secretKey)",
                ],
                timeout: .seconds(60)
            ).requireSuccess()
            try await waitUntil(timeout: .seconds(120), "radosgw to answer on \(gateway.url)") { await httpStatus(gateway.url) != nil }
            // Whoever answered, it must be this radosgw (one that lost its port exits).
            guard gateway.daemons.withLock({ $0.allSatisfy(\.isRunning) }) else { throw HarnessError("a Ceph daemon exited") }
            return gateway
        } catch {
            await gateway.close()
            throw HarnessError("radosgw did not start (\(error)); logs in \(directory.path)/log")
        }
    }

    /// Stops radosgw (SIGKILL), leaving the cluster running: the S3 endpoint refuses connections.
    public func stopGateway() async {
        let child = gatewayDaemon.withLock { state in
            defer { state?.child = nil }
            return state?.child
        }
        await child?.kill()
    }

    /// Starts radosgw again on its port; returns once it answers.
    public func startGateway() async throws {
        try launchGateway()
        try await waitUntil(timeout: .seconds(120), "radosgw to answer again on \(url)") { await httpStatus(self.url) != nil }
    }

    private func launchGateway() throws {
        guard let (program, configuration, _) = gatewayDaemon.withLock({ $0 }) else { return }
        let child = try ChildProcess.start(
            program, ["-c", configuration, "-n", "client.rgw", "-f"], outputFile: directory.appendingPathComponent("log/rgw.out"))
        daemons.withLock { $0.append(child) }
        gatewayDaemon.withLock { $0?.child = child }
    }

    /// Kills the daemons and removes the folder.
    public func close() async {
        for daemon in daemons.withLock({ $0 }).reversed() { await daemon.kill() }
        try? FileManager.default.removeItem(at: directory)
    }

    private func launch(_ program: String, _ arguments: [String], log: String) throws {
        let child = try ChildProcess.start(program, arguments, outputFile: directory.appendingPathComponent("log/\(log)"))
        daemons.withLock { $0.append(child) }
    }

    /// The cluster's configuration: everything under the folder, no authentication inside the
    /// cluster (`crc` messenger mode, or radosgw loops on "get_initial_auth_request returned
    /// -13"), fast Paxos rounds (ready in about 1.5 s instead of 12), one replica, no disk-space
    /// stop.
    private func configuration(fsid: String, monitorPort: Int) -> String {
        let root = directory.path
        let logs = """
            log_file = \(root)/log/$cluster-$name.log
            pid_file = \(root)/run/$name.pid
            """
        return """
            [global]
            fsid = \(fsid)
            mon_host = v2:127.0.0.1:\(monitorPort)
            public_addr = 127.0.0.1
            cluster_addr = 127.0.0.1
            ms_bind_msgr1 = false
            auth_cluster_required = none
            auth_service_required = none
            auth_client_required = none
            ms_mon_client_mode = crc
            run_dir = \(root)/run
            crash_dir = \(root)/crash
            keyring = \(root)/keyring
            mon_data = \(root)/mon/$cluster-$id
            osd_data = \(root)/osd/$cluster-$id
            rgw_data = \(root)/rgw/$cluster-$id
            mon_cluster_log_file = \(root)/log/$cluster.log
            paxos_propose_interval = 0.05
            paxos_min_wait = 0.01
            mon_data_avail_crit = 0
            osd_pool_default_size = 1
            osd_pool_default_pg_num = 8
            osd_pool_default_pgp_num = 8
            osd_objectstore = memstore
            objecter_tick_interval = 0.2
            [mon]
            \(logs)
            [osd]
            \(logs)
            [client.rgw]
            \(logs)
            rgw_frontends = beast endpoint=\(host)
            rgw_thread_pool_size = 16

            """
    }
}

/// Runs `body` with a radosgw started for it, and stops it afterwards.
public func withRadosGateway<T>(isolation: isolated (any Actor)? = #isolation, _ body: (RadosGateway) async throws -> T) async throws -> T {
    try await withStarted(RadosGateway.start, close: { await $0.close() }, body)
}
