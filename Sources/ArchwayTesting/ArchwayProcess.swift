import Foundation
import Synchronization

/// The real `archway` binary, started as `archway serve --config` on a free loopback port with its
/// own storage folder. What runs here is exactly what an operator runs.
public final class ArchwayProcess: Sendable {
    public let port: Int
    /// `127.0.0.1:PORT`
    public let host: String
    /// `http://127.0.0.1:PORT`
    public let url: String
    public let directory: URL
    public let storage: URL
    public let configFile: URL
    public let logFile: URL
    private let process = Mutex<ChildProcess?>(nil)
    /// Over the test's own environment (e.g. `ARCHWAY_WARM_PATH`).
    private let environment: [String: String]

    /// Starts Archway with `configuration` (YAML without `listen` and `storage`, which this adds;
    /// `storageKeys` go under `storage:` too, e.g. an `s3:` block) and waits until it listens.
    public static func start(
        configuration: String, storage: URL? = nil, maxSize: String? = nil, storageKeys: String? = nil, tls: Bool = false,
        environment: [String: String] = [:]
    ) async throws -> ArchwayProcess {
        let directory = try makeTemporaryDirectory(prefix: "archway-process")
        // The free port can be taken by another test between choosing and binding it: then the
        // process exits at once, and another port is tried.
        var attempt = 0
        while true {
            attempt += 1
            let archway = ArchwayProcess(
                port: try freeLoopbackPort(),
                directory: directory,
                storage: storage ?? directory.appendingPathComponent("storage", isDirectory: true),
                scheme: tls ? "https" : "http",
                environment: environment
            )
            var yaml = "listen: \(archway.host)\nstorage:\n  path: \(archway.storage.path)\n"
            if let maxSize { yaml += "  max-size: \(maxSize)\n" }
            if let storageKeys { yaml += storageKeys.split(separator: "\n").map { "  \($0)\n" }.joined() }
            // `$ARCHWAY_URL` stands for this process's own address (a replica's advertise-url).
            yaml += configuration.replacingOccurrences(of: "$ARCHWAY_URL", with: archway.url)
            try yaml.write(to: archway.configFile, atomically: true, encoding: .utf8)
            do {
                try await archway.launch()
                return archway
            } catch  where attempt < 3 && archway.output().contains("Address already in use") {
                try? FileManager.default.removeItem(at: archway.logFile)
                continue
            }
        }
    }

    private init(port: Int, directory: URL, storage: URL, scheme: String, environment: [String: String]) {
        self.environment = environment
        self.port = port
        self.host = "127.0.0.1:\(port)"
        self.url = "\(scheme)://127.0.0.1:\(port)"
        self.directory = directory
        self.storage = storage
        self.configFile = directory.appendingPathComponent("archway.yaml")
        self.logFile = directory.appendingPathComponent("archway.log")
    }

    /// The binary `swift build` produced: `ARCHWAY_BINARY`, or `.build/debug/archway` of this package.
    public static func binaryPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["ARCHWAY_BINARY"], !path.isEmpty { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent(".build/debug/archway").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("the archway binary is not at \(path): run `make test`, which builds it before the tests")
        }
        return path
    }

    private func launch() async throws {
        let logged = output().components(separatedBy: #""msg":"listening""#).count
        let child = try ChildProcess.start(
            try Self.binaryPath(), ["serve", "--config", configFile.path, "--log-format", "json"], environment: environment,
            outputFile: logFile
        )
        process.withLock { $0 = child }
        do {
            // Ready once it logged that it listens (for TLS too, where a plain HTTP check cannot).
            try await waitUntil(timeout: .seconds(30), "archway to listen on \(url)") {
                !child.isRunning || self.output().components(separatedBy: #""msg":"listening""#).count > logged
            }
        } catch {
            await child.kill()
            throw HarnessError("archway did not start: \(error)\n\(output())")
        }
        guard child.isRunning else {
            throw HarnessError("archway exited at start-up:\n\(output())")
        }
    }

    /// Sends a signal (SIGHUP to reload, SIGTERM to drain).
    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        process.withLock { $0 }?.signal(signal) ?? false
    }

    /// Waits for the process to exit; its exit code, nil if it did not exit in time.
    public func waitForExit(timeout: Duration) async -> Int32? {
        await process.withLock { $0 }?.waitForExit(timeout: timeout)?.exitCode
    }

    /// Stops with SIGTERM (SIGKILL after a bound); the storage stays.
    public func stop() async {
        await process.withLock { $0 }?.terminate()
    }

    /// Kills with SIGKILL, as a crash would; the storage stays.
    public func kill() async {
        await process.withLock { $0 }?.kill()
    }

    /// Starts again on the same port, configuration and storage.
    public func restart() async throws {
        await stop()
        try await launch()
    }

    /// Stops and removes the folder.
    public func close() async {
        await stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Everything Archway logged (JSON lines).
    public func output() -> String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// The CPU time the process has used so far.
    public func cpuTime() -> Duration? {
        process.withLock { $0 }?.cpuTime()
    }

    /// The process id, while it runs.
    public var pid: Int32? { process.withLock { $0 }?.pid }

    /// The highest resident memory of the process so far (VmHWM).
    public func peakResidentMemoryBytes() -> Int? {
        process.withLock { $0 }?.peakResidentMemoryBytes()
    }

    public var isRunning: Bool { process.withLock { $0 }?.isRunning ?? false }
}

/// Runs `body` with an Archway process, closing it on every path.
public func withArchwayProcess<T>(
    configuration: String,
    maxSize: String? = nil,
    storageKeys: String? = nil,
    tls: Bool = false,
    environment: [String: String] = [:],
    isolation: isolated (any Actor)? = #isolation,
    _ body: (ArchwayProcess) async throws -> T
) async throws -> T {
    try await withStarted(
        {
            try await ArchwayProcess.start(
                configuration: configuration, maxSize: maxSize, storageKeys: storageKeys, tls: tls, environment: environment)
        },
        close: { await $0.close() }, body)
}
