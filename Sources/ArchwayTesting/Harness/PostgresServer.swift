import Foundation
import Synchronization

/// A real PostgreSQL 15 (Debian's), throwaway: a cluster of its own (`initdb`) in its own
/// folder, a free loopback port, trust authentication, no fsync. Ready in about two seconds. Runs as the `postgres` user (initdb and the server refuse root) through `setpriv`,
/// so the harness's child is the server itself. Stopped by SIGINT (a fast shutdown), by pid.
public final class PostgresServer: Sendable {
    public let port: Int
    public let directory: URL
    /// The user every test connects as (trust authentication: no password).
    public let user = "postgres"
    public let database = "postgres"
    private let server = Mutex<ChildProcess?>(nil)

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    public var url: String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    private init(port: Int, directory: URL) {
        self.port = port
        self.directory = directory
    }

    deinit {
        server.withLock { $0 }?.signal(SIGKILL)
    }

    static let binaries = "/usr/lib/postgresql/15/bin"

    /// Makes a cluster (initdb, about a second) and starts a server on it; returns once it
    /// accepts connections.
    public static func start() async throws -> PostgresServer {
        for program in ["setpriv", "\(binaries)/postgres", "\(binaries)/initdb", "\(binaries)/pg_isready"] {
            _ = try requireProgram(program)
        }
        let directory = try makeTemporaryDirectory(prefix: "archway-pg")
        var server = PostgresServer(port: try freeLoopbackPort(), directory: directory)
        do {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("socket"), withIntermediateDirectories: true)
            try await chownToPostgres(directory)
            try await asPostgres(
                "\(binaries)/initdb",
                [
                    "-D", directory.appendingPathComponent("data").path, "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale", "-U",
                    "postgres",
                ]
            ).requireSuccess()
            // The free port can be taken by another test between choosing and binding it: then
            // the server exits at once, and another port is tried.
            var attempt = 0
            while true {
                do {
                    try await server.launch()
                    return server
                } catch {
                    let log = (try? String(contentsOf: directory.appendingPathComponent("postgres.log"), encoding: .utf8)) ?? ""
                    guard attempt < 3, log.contains("Address already in use") else { throw error }
                    await server.stop()
                    attempt += 1
                    server = PostgresServer(port: try freeLoopbackPort(), directory: directory)
                }
            }
        } catch {
            await server.close()
            throw HarnessError("PostgreSQL did not start (\(error)); log in \(directory.path)/postgres.log")
        }
    }

    /// Starts the server process (again, after ``stop()``) and waits until it is ready.
    public func launch() async throws {
        let child = try ChildProcess.start(
            "/usr/bin/setpriv",
            [
                "--reuid=postgres", "--regid=postgres", "--init-groups", "\(Self.binaries)/postgres", "-D",
                directory.appendingPathComponent("data").path, "-p", String(port), "-k", directory.appendingPathComponent("socket").path,
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            ],
            outputFile: directory.appendingPathComponent("postgres.log"))
        server.withLock { $0 = child }
        try await waitUntil(timeout: .seconds(30), "PostgreSQL to accept connections on port \(port)") {
            guard child.isRunning else { return true }
            let probe = try? await run(
                "\(Self.binaries)/pg_isready", ["-h", "127.0.0.1", "-p", String(self.port), "-U", self.user, "-d", self.database],
                timeout: .seconds(10))
            return probe?.exitCode == 0
        }
        guard child.isRunning else { throw HarnessError("postgres exited: \(child.output())") }
    }

    /// A fast shutdown (SIGINT): clients are disconnected; the data stays for ``launch()``.
    public func stop() async {
        guard let child = server.withLock({ $0 }) else { return }
        child.signal(SIGINT)
        if await child.waitForExit(timeout: .seconds(10)) == nil { await child.kill() }
        server.withLock { $0 = nil }
    }

    /// Runs SQL with psql as the server's user; the output (unaligned, tuples only).
    public func psql(_ sql: String) async throws -> String {
        try await run(
            "\(Self.binaries)/psql",
            ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            timeout: .seconds(30)
        ).requireSuccess().stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the server and removes its folder.
    public func close() async {
        await stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private static func chownToPostgres(_ folder: URL) async throws {
        try await run(try requireProgram("chown"), ["-R", "postgres:postgres", folder.path]).requireSuccess()
    }

    private static func asPostgres(_ program: String, _ arguments: [String]) async throws -> ProcessResult {
        try await run(
            "/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", program] + arguments, timeout: .seconds(60))
    }
}

/// Runs `body` with a PostgreSQL server started for it, and stops it afterwards.
public func withPostgres<T>(isolation: isolated (any Actor)? = #isolation, _ body: (PostgresServer) async throws -> T) async throws -> T {
    try await withStarted(PostgresServer.start, close: { await $0.close() }, body)
}
