import Foundation

/// podman as root with the vfs driver, private storage, and a registries.conf of the test's.
public struct Podman: Sendable {
    public let directory: URL
    public let registriesConfiguration: URL

    public init(directory: URL, registriesConfiguration: URL) {
        self.directory = directory
        self.registriesConfiguration = registriesConfiguration
    }

    public func podman(_ arguments: [String], timeout: Duration = .seconds(300)) async throws -> ProcessResult {
        let global = [
            "--root", directory.appendingPathComponent("root").path, "--runroot", directory.appendingPathComponent("run").path,
            "--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs",
            "--tmpdir", directory.appendingPathComponent("tmp").path,
        ]
        return try await run(
            try requireProgram("podman"), global + arguments,
            environment: ["CONTAINERS_REGISTRIES_CONF": registriesConfiguration.path, "TMPDIR": directory.path], timeout: timeout
        )
    }
}
