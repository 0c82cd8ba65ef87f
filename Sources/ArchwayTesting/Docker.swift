import Foundation

/// A Docker engine (Debian's docker.io, dockerd 20.10) started by hand with private roots, no
/// networking of its own and the vfs storage driver, as a client under test.
public final class DockerEngine: Sendable {
    public let directory: URL
    public let socket: String
    let process: ChildProcess

    private init(directory: URL, socket: String, process: ChildProcess) {
        self.directory = directory
        self.socket = socket
        self.process = process
    }

    /// Starts dockerd with `daemon.json` (e.g. written by `archway mirrors docker`) and
    /// `environment` over the test's own (e.g. `HTTPS_PROXY`, `SSL_CERT_FILE`).
    public static func start(daemonConfiguration: URL, environment: [String: String]? = nil) async throws -> DockerEngine {
        let dockerd = try requireProgram("dockerd")
        _ = try requireProgram("docker")
        // Unix socket paths are short: keep everything under a short folder.
        let directory = URL(fileURLWithPath: "/tmp/awd-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let socket = directory.appendingPathComponent("d.sock").path
        let process = try ChildProcess.start(
            dockerd,
            [
                "--config-file", daemonConfiguration.path, "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--storage-driver=vfs", "--data-root", directory.appendingPathComponent("root").path,
                "--exec-root", directory.appendingPathComponent("x").path, "--pidfile", directory.appendingPathComponent("d.pid").path,
                "-H", "unix://\(socket)",
            ],
            environment: environment,
            outputFile: directory.appendingPathComponent("dockerd.log")
        )
        let engine = DockerEngine(directory: directory, socket: socket, process: process)
        do {
            try await waitUntil(timeout: .seconds(60), "dockerd to answer") {
                guard process.isRunning else { return true }
                return (try? await engine.docker(["version", "--format", "{{.Server.Version}}"]).succeeded) == true
            }
            guard process.isRunning else { throw HarnessError("dockerd exited:\n\(process.output())") }
        } catch {
            await engine.stop()
            throw error
        }
        return engine
    }

    public func docker(_ arguments: [String], timeout: Duration = .seconds(300)) async throws -> ProcessResult {
        try await run(try requireProgram("docker"), ["-H", "unix://\(socket)"] + arguments, timeout: timeout)
    }

    public func output() -> String { process.output() }

    public func stop() async {
        await process.terminate(timeout: .seconds(20))
        // vfs layers and the exec root are only ours.
        _ = try? await run("/bin/rm", ["-rf", directory.path])
    }
}

/// Runs `body` with a Docker engine, stopping it on every path.
public func withDockerEngine<T>(
    daemonConfiguration: URL,
    environment: [String: String]? = nil,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (DockerEngine) async throws -> T
) async throws -> T {
    try await withStarted(
        { try await DockerEngine.start(daemonConfiguration: daemonConfiguration, environment: environment) }, close: { await $0.stop() },
        body)
}
