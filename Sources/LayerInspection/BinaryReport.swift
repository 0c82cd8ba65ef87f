import Foundation

/// How an image's config says it is run: the `config` object's `Entrypoint`, `Cmd`, `Env` and
/// `WorkingDir` (each may be absent or null).
public struct ImageExecution: Sendable, Hashable, Codable {
    public var entrypoint: [String]
    public var cmd: [String]
    public var env: [String]
    public var workingDir: String

    public init(entrypoint: [String] = [], cmd: [String] = [], env: [String] = [], workingDir: String = "") {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
    }

    enum CodingKeys: String, CodingKey {
        case entrypoint = "Entrypoint"
        case cmd = "Cmd"
        case env = "Env"
        case workingDir = "WorkingDir"
    }

    /// Reads a config's `config` object; absent and null fields are empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entrypoint = try container.decodeIfPresent([String].self, forKey: .entrypoint) ?? []
        cmd = try container.decodeIfPresent([String].self, forKey: .cmd) ?? []
        env = try container.decodeIfPresent([String].self, forKey: .env) ?? []
        workingDir = try container.decodeIfPresent(String.self, forKey: .workingDir) ?? ""
    }

    /// Writes a config's `config` object, empty fields left out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if !entrypoint.isEmpty { try container.encode(entrypoint, forKey: .entrypoint) }
        if !cmd.isEmpty { try container.encode(cmd, forKey: .cmd) }
        if !env.isEmpty { try container.encode(env, forKey: .env) }
        if !workingDir.isEmpty { try container.encode(workingDir, forKey: .workingDir) }
    }

    private struct Document: Decodable {
        var config: ImageExecution?
    }

    /// Reads a config blob's execution fields; nil when the blob is not a JSON object.
    public static func decode(_ bytes: Data) -> ImageExecution? {
        guard let document = try? JSONDecoder().decode(Document.self, from: bytes) else { return nil }
        return document.config ?? ImageExecution()
    }

    /// What the runtime executes: the entrypoint followed by the command.
    public var arguments: [String] { entrypoint + cmd }

    /// `PATH` from the environment, or the runtimes' default.
    public var searchPath: [String] {
        let value = env.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? Self.defaultPath
        return value.split(separator: ":").map(String.init)
    }

    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// What an image's binaries are, found by following its entrypoint through its filesystem.
public struct BinaryReport: Sendable, Hashable, Codable {
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// The file that runs is an ELF binary of a known architecture.
        case found
        /// The config names nothing to run.
        case noEntrypoint = "no-entrypoint"
        /// What the config names is not in the image (or is a link loop).
        case missing
        /// What runs is neither ELF nor a `#!` script (a Windows binary, data), or an ELF file of
        /// a machine no platform names.
        case unknownFormat = "unknown-format"
        /// The scan stopped before the end of a layer (a limit reached): no verdict.
        case incomplete
    }

    public var outcome: Outcome
    /// The files followed, each as `path` or `path -> resolved`: the entrypoint, then each
    /// script's interpreter.
    public var chain: [String]
    /// The ELF file that runs, and what its header says.
    public var binary: String?
    public var elf: String?
    /// The architecture of the binary that runs (`amd64`, `arm64`, ...).
    public var architecture: String?
    /// The ELF executables in the usual bin folders, counted per architecture.
    public var executables: [String: Int]
    /// Why there is no verdict, in words.
    public var detail: String?

    public init(
        outcome: Outcome, chain: [String] = [], binary: String? = nil, elf: String? = nil, architecture: String? = nil,
        executables: [String: Int] = [:], detail: String? = nil
    ) {
        self.outcome = outcome
        self.chain = chain
        self.binary = binary
        self.elf = elf
        self.architecture = architecture
        self.executables = executables
        self.detail = detail
    }

    /// Whether the binary that runs contradicts `platformArchitecture` (the config's, normalized).
    /// 32-bit ARM binaries serve every `arm` variant; a verdict needs a found binary.
    public func contradicts(architecture platformArchitecture: String) -> Bool {
        guard outcome == .found, let architecture else { return false }
        return architecture != platformArchitecture
    }

    /// `amd64: 12, arm64: 1`
    public var executablesSummary: String {
        executables.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }
}

extension LayeredFilesystem {
    /// The folders whose ELF executables a report counts.
    static let binFolders: Set<String> = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]

    /// Follows `execution` the way a runtime does: the first argument, looked up in `PATH` when
    /// it has no slash (relative to `WorkingDir` when it has one but is not absolute), links
    /// followed, then a `#!` line's interpreter (through `env` to the program it names), at
    /// most four scripts deep.
    public func report(for execution: ImageExecution) -> BinaryReport {
        var report = BinaryReport(outcome: .missing, executables: executableSummary())
        guard var program = execution.arguments.first, !program.isEmpty else {
            report.outcome = .noEntrypoint
            return report
        }
        let workingDirectory = execution.workingDir.isEmpty ? "/" : execution.workingDir
        for _ in 0..<5 {
            guard let path = locate(program, searchPath: execution.searchPath, workingDirectory: workingDirectory),
                case .file(_, let head) = nodes[path]
            else {
                report.chain.append(program)
                report.detail = "\(program) is not in the image"
                return report
            }
            report.chain.append(path == program ? path : "\(program) -> \(path)")
            if let identity = ELFIdentity(head) {
                report.binary = path
                report.elf = identity.description
                report.architecture = identity.architecture
                report.outcome = identity.architecture == nil ? .unknownFormat : .found
                return report
            }
            guard let interpreter = Self.interpreter(head) else {
                report.outcome = .unknownFormat
                report.detail = "\(path) is neither an ELF binary nor a #! script"
                return report
            }
            if let named = interpreter.named {
                // `#!/usr/bin/env python3`: env runs, but python3 decides what the image needs.
                report.chain.append(interpreter.program)
                program = named
            } else {
                program = interpreter.program
            }
        }
        report.detail = "more than four scripts deep"
        return report
    }

    /// The file a program name leads to, when it is a regular file.
    func locate(_ program: String, searchPath: [String], workingDirectory: String) -> String? {
        let candidates = program.contains("/") ? [program] : searchPath.map { Self.join($0, program) }
        for candidate in candidates {
            if let path = resolve(candidate, from: workingDirectory), case .file = nodes[path] { return path }
        }
        return nil
    }

    /// The program a `#!` line runs, and with `/usr/bin/env` the program `env` looks up (options
    /// and `NAME=value` assignments skipped).
    static func interpreter(_ head: [UInt8]) -> (program: String, named: String?)? {
        guard head.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) else { return nil }
        let line = head.dropFirst(2).prefix { $0 != UInt8(ascii: "\n") }
        let words = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard let interpreter = words.first else { return nil }
        guard interpreter.hasSuffix("/env") else { return (interpreter, nil) }
        // `env -S python3 -u` splits its argument: the program is its first word either way.
        return (interpreter, words.dropFirst().first { !$0.hasPrefix("-") && !$0.contains("=") })
    }

    /// The ELF executables in the usual bin folders, per architecture.
    func executableSummary() -> [String: Int] {
        var counts: [String: Int] = [:]
        for (path, node) in nodes {
            guard case .file(_, let head) = node, let identity = ELFIdentity(head),
                Self.binFolders.contains(Self.split(path).directory)
            else { continue }
            counts[identity.architecture ?? "machine-\(identity.machine)", default: 0] += 1
        }
        return counts
    }
}
