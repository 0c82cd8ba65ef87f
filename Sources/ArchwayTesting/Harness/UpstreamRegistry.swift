import Foundation
import Synchronization

/// One line of docker-registry's access log (Apache combined format):
/// `127.0.0.1 - - [29/Nov/2026:15:16:25 +0000] "HEAD /v2/test/multi/manifests/1.0?ns=registry.test HTTP/1.1" 200 506 "" "containerd/1.6.20~ds1"`.
public struct AccessLogEntry: Sendable, Hashable, CustomStringConvertible {
    public let method: String
    /// The request path without the query string, e.g. `/v2/test/multi/manifests/1.0`.
    public let path: String
    /// The query string without `?` (e.g. `ns=registry.test`), if there was one.
    public let query: String?
    public let status: Int
    public let userAgent: String
    public let line: String

    public var description: String { line }

    /// Parses one access-log line; `nil` for any other line (docker-registry's own log lines).
    public init?(line: String) {
        guard let firstQuote = line.firstIndex(of: "\"") else { return nil }
        let afterQuote = line.index(after: firstQuote)
        guard let closingQuote = line[afterQuote...].firstIndex(of: "\"") else { return nil }
        let requestLine = line[afterQuote..<closingQuote].split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/") else { return nil }
        let rest = line[line.index(after: closingQuote)...].split(separator: " ", maxSplits: 2)
        guard rest.count >= 2, let status = Int(rest[0]) else { return nil }
        let target = String(requestLine[1])
        if let questionMark = target.firstIndex(of: "?") {
            path = String(target[..<questionMark])
            query = String(target[target.index(after: questionMark)...])
        } else {
            path = target
            query = nil
        }
        method = String(requestLine[0])
        self.status = status
        let quoted = rest.count > 2 ? rest[2].split(separator: "\"", omittingEmptySubsequences: false) : []
        // `"referer" "user agent"` splits into ["", referer, " ", agent, ""].
        userAgent = quoted.count >= 4 ? String(quoted[3]) : ""
        self.line = line
    }
}

/// A real `docker-registry` (distribution 2.8) on a free loopback port, with its own storage folder
/// and configuration file, for use as the upstream in tests. Stop it with ``close()`` (or use
/// ``withUpstreamRegistry(_:)``); ``stop()`` and ``restart()`` simulate an outage on the same port
/// and storage.
public final class UpstreamRegistry: Sendable {
    public let port: Int
    /// `127.0.0.1:PORT`
    public let host: String
    /// `http://127.0.0.1:PORT`
    public let url: String
    /// The folder holding `config.yml`, `storage/` and `registry.log`.
    public let directory: URL
    public let configFile: URL
    public let logFile: URL
    private let process = Mutex<ChildProcess?>(nil)

    private init(port: Int, directory: URL) {
        self.port = port
        self.host = "127.0.0.1:\(port)"
        self.url = "http://127.0.0.1:\(port)"
        self.directory = directory
        self.configFile = directory.appendingPathComponent("config.yml")
        self.logFile = directory.appendingPathComponent("registry.log")
    }

    deinit {
        if let child = process.withLock({ $0 }) { child.signal(SIGKILL) }
    }

    /// Starts a registry on a free port with empty storage; returns once `GET /v2/` answers 200.
    public static func start() async throws -> UpstreamRegistry {
        let executable = try requireProgram("docker-registry")
        let directory = try makeTemporaryDirectory(prefix: "archway-registry")
        var lastError: (any Error)?
        for _ in 0..<3 {  // the free port can be taken between choosing and binding it
            let registry = UpstreamRegistry(port: try freeLoopbackPort(), directory: directory)
            do {
                try registry.writeConfiguration()
                try await registry.launch(executable)
                return registry
            } catch {
                lastError = error
                await registry.stop()
            }
        }
        try? FileManager.default.removeItem(at: directory)
        throw lastError ?? HarnessError("docker-registry did not start")
    }

    private func writeConfiguration() throws {
        let storage = directory.appendingPathComponent("storage")
        try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
        let yaml = """
            version: 0.1
            log:
              level: info
              formatter: text
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: \(storage.path)
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:\(port)
              secret: archway-test-secret
            """
        try Data((yaml + "\n").utf8).write(to: configFile)
    }

    private func launch(_ executable: String) async throws {
        let child = try ChildProcess.start(
            executable, ["serve", configFile.path],
            outputFile: logFile
        )
        process.withLock { $0 = child }
        do {
            try await waitUntil(timeout: .seconds(30), interval: .milliseconds(20), "docker-registry on \(host)") {
                guard child.isRunning else { return true }
                return await httpStatus(url + "/v2/") == 200
            }
        } catch {
            throw HarnessError("docker-registry did not answer on \(host): \(error)\n\(child.output().suffix(4000))")
        }
        guard child.isRunning else {
            throw HarnessError("docker-registry exited (\(child.termination.map { "\($0)" } ?? "?")):\n\(child.output().suffix(4000))")
        }
    }

    /// Whether the registry process is running.
    public var isRunning: Bool { process.withLock { $0 }?.isRunning ?? false }

    /// The registry process, while it runs.
    public var childProcess: ChildProcess? { process.withLock { $0 } }

    /// Stops the process (SIGTERM, then SIGKILL); the storage and port are kept for ``restart()``.
    public func stop() async {
        let child = process.withLock { current -> ChildProcess? in
            defer { current = nil }
            return current
        }
        await child?.terminate(timeout: .seconds(5))
    }

    /// Starts the registry again on the same port with the same storage (after ``stop()``).
    public func restart() async throws {
        await stop()
        let executable = try requireProgram("docker-registry")
        var lastError: (any Error)?
        for attempt in 0..<5 {  // the port may linger briefly
            do {
                try await launch(executable)
                return
            } catch {
                lastError = error
                let child = process.withLock { current -> ChildProcess? in
                    defer { current = nil }
                    return current
                }
                await child?.terminate(timeout: .seconds(2))
                try await Task.sleep(for: .milliseconds(200 * (attempt + 1)))
            }
        }
        throw lastError ?? HarnessError("docker-registry did not restart")
    }

    /// Stops the process and deletes the storage.
    public func close() async {
        await stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Everything docker-registry printed (its own log and the access log).
    public func output() -> String {
        String(decoding: (try? Data(contentsOf: logFile)) ?? Data(), as: UTF8.self)
    }

    /// All access-log entries so far (also across restarts), oldest first.
    public func accessLog() -> [AccessLogEntry] {
        output().split(separator: "\n").compactMap { AccessLogEntry(line: String($0)) }
    }

    /// The entries after the first `mark` ones; take `mark` from ``accessLogMark()``.
    public func accessLog(since mark: Int) -> [AccessLogEntry] {
        Array(accessLog().dropFirst(mark))
    }

    /// The number of access-log entries so far, to look only at later ones with ``accessLog(since:)``.
    public func accessLogMark() -> Int { accessLog().count }

    /// How many requests with `method` had a path (query excluded) ending in `pathSuffix`.
    public func requestCount(method: String, pathSuffix: String, since mark: Int = 0) -> Int {
        accessLog(since: mark).filter { $0.method == method && $0.path.hasSuffix(pathSuffix) }.count
    }

    /// Waits until the access log has an entry that satisfies `predicate` (it is written just
    /// after the response, so a client can be faster than the log).
    public func waitForAccessLog(
        timeout: Duration = .seconds(5),
        _ predicate: @escaping @Sendable (AccessLogEntry) -> Bool
    ) async throws {
        try await waitUntil(timeout: timeout, interval: .milliseconds(20), "an access-log entry on \(host)") {
            self.accessLog().contains(where: predicate)
        }
    }
}

/// Starts an ``UpstreamRegistry``, runs `body`, and stops it and deletes its storage afterwards,
/// also when `body` throws.
public func withUpstreamRegistry<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (UpstreamRegistry) async throws -> T
) async throws -> T {
    try await withStarted(UpstreamRegistry.start, close: { await $0.close() }, body)
}
