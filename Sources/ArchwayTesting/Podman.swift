import Foundation

/// podman as root with the vfs driver, private storage, and a registries.conf of the test's.
public struct Podman: Sendable {
    public let directory: URL
    public let registriesConfiguration: URL
    /// Over the test's own environment (e.g. `HTTPS_PROXY`, `SSL_CERT_FILE`).
    public let environment: [String: String]

    public init(directory: URL, registriesConfiguration: URL, environment: [String: String] = [:]) {
        self.directory = directory
        self.registriesConfiguration = registriesConfiguration
        self.environment = environment
    }

    public func podman(_ arguments: [String], timeout: Duration = .seconds(300)) async throws -> ProcessResult {
        let global = [
            "--root", directory.appendingPathComponent("root").path, "--runroot", directory.appendingPathComponent("run").path,
            "--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs",
            "--tmpdir", directory.appendingPathComponent("tmp").path,
        ]
        return try await run(
            try requireProgram("podman"), global + arguments,
            environment: environment.merging(["CONTAINERS_REGISTRIES_CONF": registriesConfiguration.path, "TMPDIR": directory.path]) { $1 },
            timeout: timeout
        )
    }
}
