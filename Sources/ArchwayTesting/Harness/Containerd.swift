import Foundation
import Synchronization

/// A private containerd (1.6 here) for pull tests: its root, state, temp and opt folders, its
/// sockets and its log all live in one temporary folder; the CRI plugin and the snapshotters that
/// can not work here are disabled. Talk to it with ``ctr(_:timeout:)``; stop it with ``stop()``
/// (or use ``withContainerd(snapshotter:_:)``).
public final class Containerd: Sendable {
    /// The temporary folder holding everything this containerd writes.
    public let directory: URL
    /// The gRPC socket (`ctr --address`).
    public let socket: String
    public let configFile: URL
    public let logFile: URL
    /// The snapshotter ``pull(_:hostsDir:platform:plainHTTP:)`` unpacks into (`native` by default:
    /// plain directories, no mounts, so the folder can always be deleted).
    public let snapshotter: String
    private let process: Mutex<ChildProcess?>

    private init(directory: URL, snapshotter: String, process: ChildProcess?) {
        self.directory = directory
        self.socket = directory.appendingPathComponent("containerd.sock").path
        self.configFile = directory.appendingPathComponent("config.toml")
        self.logFile = directory.appendingPathComponent("containerd.log")
        self.snapshotter = snapshotter
        self.process = Mutex(process)
    }

    deinit {
        if let child = process.withLock({ $0 }) { child.signal(SIGKILL) }
    }

    /// Starts containerd; returns once `ctr version` answers through its socket.
    public static func start(snapshotter: String = "native") async throws -> Containerd {
        let executable = try requireProgram("containerd")
        _ = try requireProgram("ctr")
        let directory = try makeTemporaryDirectory(prefix: "archway-ctd")
        let containerd = Containerd(directory: directory, snapshotter: snapshotter, process: nil)
        do {
            for name in ["root", "state", "tmp", "opt"] {
                try FileManager.default.createDirectory(
                    at: directory.appendingPathComponent(name), withIntermediateDirectories: true
                )
            }
            try Data(containerd.configuration().utf8).write(to: containerd.configFile)
            let child = try ChildProcess.start(
                executable, ["--config", containerd.configFile.path],
                environment: ["TMPDIR": directory.appendingPathComponent("tmp").path],
                outputFile: containerd.logFile
            )
            containerd.process.withLock { $0 = child }
            let ctr = try requireProgram("ctr")
            try await waitUntil(timeout: .seconds(30), interval: .milliseconds(50), "containerd at \(containerd.socket)") {
                guard child.isRunning else { return true }
                guard FileManager.default.fileExists(atPath: containerd.socket) else { return false }
                let result = try? await run(ctr, ["--address", containerd.socket, "version"], timeout: .seconds(10))
                return result?.succeeded ?? false
            }
            guard child.isRunning else {
                throw HarnessError("containerd exited (\(child.termination.map { "\($0)" } ?? "?")):\n\(child.output().suffix(4000))")
            }
            return containerd
        } catch {
            let log = containerd.output().suffix(4000)
            await containerd.stop()
            throw HarnessError("containerd did not start: \(error)\n\(log)")
        }
    }

    private func configuration() -> String {
        let path = directory.path
        return """
            version = 2
            root = "\(path)/root"
            state = "\(path)/state"
            temp = "\(path)/tmp"
            disabled_plugins = [
              "io.containerd.grpc.v1.cri",
              "io.containerd.snapshotter.v1.aufs",
              "io.containerd.snapshotter.v1.btrfs",
              "io.containerd.snapshotter.v1.devmapper",
              "io.containerd.snapshotter.v1.zfs",
            ]

            [grpc]
              address = "\(socket)"

            [ttrpc]
              address = "\(socket).ttrpc"

            [debug]
              level = "info"

            [plugins]
              [plugins."io.containerd.internal.v1.opt"]
                path = "\(path)/opt"

            """
    }

    /// Whether the containerd process is running.
    public var isRunning: Bool { process.withLock { $0 }?.isRunning ?? false }

    /// The containerd process, while it runs.
    public var childProcess: ChildProcess? { process.withLock { $0 } }

    /// What containerd logged.
    public func output() -> String {
        String(decoding: (try? Data(contentsOf: logFile)) ?? Data(), as: UTF8.self)
    }

    /// `ctr --address <socket> <arguments>`; returns the result whether or not it succeeded.
    public func ctr(_ arguments: [String], timeout: Duration = .seconds(300)) async throws -> ProcessResult {
        try await run(try requireProgram("ctr"), ["--address", socket] + arguments, timeout: timeout)
    }

    /// Stops containerd (SIGTERM, then SIGKILL) and deletes its folder.
    public func stop() async {
        let child = process.withLock { current -> ChildProcess? in
            defer { current = nil }
            return current
        }
        await child?.terminate(timeout: .seconds(10))
        if !hasMounts(under: directory.path) {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    private func hasMounts(under path: String) -> Bool {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return false }
        return mounts.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 1 && fields[1].hasPrefix(path)
        }
    }

    // MARK: - Pulling

    /// `ctr images pull --hosts-dir <hostsDir> --snapshotter <snapshotter> [--plain-http]
    /// [--platform <platform>] <reference>`. The reference must be fully qualified
    /// (`docker.io/library/busybox:1`: ctr adds neither `docker.io` nor `library/`). The layers are
    /// unpacked, also for a platform other than this machine's. Returns the result whether or not
    /// the pull succeeded; a platform missing from an index fails with
    /// `no match for platform in manifest`.
    public func pull(_ reference: String, hostsDir: URL, platform: String?, plainHTTP: Bool = true) async throws -> ProcessResult {
        var arguments = ["images", "pull", "--hosts-dir", hostsDir.path, "--snapshotter", snapshotter]
        if plainHTTP { arguments.append("--plain-http") }
        if let platform { arguments += ["--platform", platform] }
        arguments.append(reference)
        return try await ctr(arguments)
    }

    /// The `architecture` in the config of the image stored for `reference` (for an index: of the
    /// child for `platform`, or this machine's platform when `nil`).
    public func imageConfigArchitecture(_ reference: String, platform: String?) async throws -> String {
        try await storedImage(reference, platform: platform).architecture
    }

    /// What containerd stored for `reference`: the digest it resolved to, the manifest chosen for
    /// `platform` (this machine's when `nil`) and its config, read from the content store.
    public func storedImage(_ reference: String, platform: String?) async throws -> StoredImage {
        var wanted = ImagePlatform.host
        if let platform {
            guard let parsed = ImagePlatform(parsing: platform) else { throw HarnessError("not a platform: \(platform)") }
            wanted = parsed
        }
        guard let digest = try await imageDigest(reference) else {
            throw HarnessError("containerd has no image \(reference)")
        }
        return try await StoredImage.resolve(digest: digest, platform: wanted) { digest in
            try await self.content(digest)
        }
    }

    /// The digest `reference` points at in containerd's image store (`ctr images ls`), or `nil`.
    public func imageDigest(_ reference: String) async throws -> String? {
        let result = try await ctr(["images", "ls"]).requireSuccess()
        for line in result.stdout.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 3, fields[0] == reference { return String(fields[2]) }
        }
        return nil
    }

    /// The references containerd has images for.
    public func imageReferences() async throws -> [String] {
        let result = try await ctr(["images", "ls", "-q"]).requireSuccess()
        return result.stdout.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// A blob from the content store (`ctr content get`), or `nil` when it is not there.
    public func content(_ digest: String) async throws -> Data? {
        let result = try await ctr(["content", "get", digest])
        guard result.succeeded else { return nil }
        guard sha256Digest(result.stdoutData) == digest else {
            throw HarnessError("ctr content get \(digest) returned bytes that hash to \(sha256Digest(result.stdoutData))")
        }
        return result.stdoutData
    }

    /// Removes an image reference (`ctr images rm --sync`), so that the next pull resolves again;
    /// content that no other image uses is garbage-collected.
    public func removeImage(_ reference: String) async throws {
        try await ctr(["images", "rm", "--sync", reference]).requireSuccess()
    }

    // MARK: - hosts.toml

    /// Writes `<directory>/<registry>/hosts.toml` in containerd's format:
    ///
    /// ```toml
    /// server = "<server>"
    ///
    /// [host."<mirror>"]
    ///   capabilities = ["pull", "resolve"]
    ///   [host."<mirror>".header]
    ///     X-Name = ["value"]
    /// ```
    ///
    /// `registry` is the name clients use (`docker.io`, `registry.test`, `myregistry.test:5000`).
    /// containerd tries the mirror first and falls back to `server` (after a 404 too), sending
    /// `?ns=<registry>` to both. Without a `[host]` table containerd ignores the file.
    public static func writeHostsToml(
        directory: URL,
        registry: String,
        server: String,
        mirror: String,
        capabilities: [String] = ["pull", "resolve"],
        headers: [String: String] = [:]
    ) throws {
        let folder = directory.appendingPathComponent(registry)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var text = """
            server = \(tomlString(server))

            [host.\(tomlString(mirror))]
              capabilities = [\(capabilities.map(tomlString).joined(separator: ", "))]

            """
        if !headers.isEmpty {
            text += "  [host.\(tomlString(mirror)).header]\n"
            for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
                text += "    \(tomlString(name)) = [\(tomlString(value))]\n"
            }
        }
        try Data(text.utf8).write(to: folder.appendingPathComponent("hosts.toml"))
    }

    private static func tomlString(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            default: escaped.append(character)
            }
        }
        return "\"" + escaped + "\""
    }
}

/// Starts a ``Containerd``, runs `body`, and stops it and deletes its folder afterwards, also when
/// `body` throws.
public func withContainerd<T>(
    snapshotter: String = "native",
    isolation: isolated (any Actor)? = #isolation,
    _ body: (Containerd) async throws -> T
) async throws -> T {
    try await withStarted({ try await Containerd.start(snapshotter: snapshotter) }, close: { await $0.stop() }, body)
}
