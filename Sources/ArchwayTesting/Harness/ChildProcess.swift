import Dispatch
import Foundation
import OCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// MARK: - Spawning

/// What `waitpid` reported for a child that ended.
public struct ProcessTermination: Sendable, Hashable, CustomStringConvertible {
    /// The raw `wait` status.
    public let rawStatus: Int32

    /// The exit code, or `128 + signal` (the shell's convention) when a signal ended the process.
    public var exitCode: Int32 {
        if let signal { return 128 + signal }
        return (rawStatus >> 8) & 0xff
    }

    /// The signal that ended the process, if one did.
    public var signal: Int32? {
        let low = rawStatus & 0x7f
        return (low != 0 && low != 0x7f) ? low : nil
    }

    public var description: String {
        if let signal { return "killed by signal \(signal)" }
        return "exit code \(exitCode)"
    }
}

/// Watches one child: a thread waits for it to end (without reaping it), and the child is reaped
/// under the same lock that guards every signal sent to it, so a signal never reaches a recycled pid.
final class ChildExitMonitor: Sendable {
    private struct State {
        var termination: ProcessTermination?
        var waiters: [UInt64: CheckedContinuation<ProcessTermination?, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    let pid: pid_t
    private let state = Mutex(State())

    init(pid: pid_t) {
        self.pid = pid
        let monitor = self
        let thread = Thread {
            monitor.waitForChild()
        }
        thread.name = "archway-reaper-\(pid)"
        thread.stackSize = 256 * 1024
        thread.start()
    }

    private func waitForChild() {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 {
            if errno != EINTR { break }
        }
        let waiters: [CheckedContinuation<ProcessTermination?, Never>]
        let termination: ProcessTermination
        (termination, waiters) = state.withLock { state in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 {
                if errno != EINTR {
                    status = 0
                    break
                }
            }
            let termination = ProcessTermination(rawStatus: status)
            state.termination = termination
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            return (termination, waiters)
        }
        for waiter in waiters { waiter.resume(returning: termination) }
    }

    var termination: ProcessTermination? {
        state.withLock { $0.termination }
    }

    /// Sends `signal` unless the child has already been reaped. Returns whether it was sent.
    @discardableResult
    func send(_ signal: Int32) -> Bool {
        state.withLock { state in
            guard state.termination == nil else { return false }
            return Glibc.kill(pid, signal) == 0
        }
    }

    /// Waits until the child ends, or `timeout` passes (then `nil`). Does not depend on task
    /// cancellation, so it also works in cleanup paths of cancelled tasks.
    func wait(timeout: Duration?) async -> ProcessTermination? {
        await withCheckedContinuation { (continuation: CheckedContinuation<ProcessTermination?, Never>) in
            let registered: UInt64? = state.withLock { state in
                if state.termination != nil { return nil }
                let id = state.nextWaiter
                state.nextWaiter += 1
                state.waiters[id] = continuation
                return id
            }
            guard let id = registered else {
                continuation.resume(returning: termination)
                return
            }
            if let timeout {
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout.totalSeconds) { [self] in
                    let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
                    waiter?.resume(returning: nil)
                }
            }
        }
    }
}

private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module does not
/// export: found at run time so that no descriptor of the test process leaks into a child.
private let addCloseFrom: AddCloseFrom? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
        return nil
    }
    return unsafeBitCast(symbol, to: AddCloseFrom.self)
}()

/// `posix_spawn`s `executable` with stdin from /dev/null and stdout/stderr appended to files.
/// All other descriptors are closed in the child.
func harnessSpawn(
    executable: String,
    arguments: [String],
    environment: [String: String]?,
    stdoutPath: String,
    stderrPath: String
) throws -> pid_t {
    let path = try requireProgram(executable)

    let outFD = open(stdoutPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard outFD >= 0 else { throw HarnessError("cannot open \(stdoutPath): errno \(errno)") }
    defer { close(outFD) }
    var errFD = outFD
    if stderrPath != stdoutPath {
        errFD = open(stderrPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard errFD >= 0 else { throw HarnessError("cannot open \(stderrPath): errno \(errno)") }
    }
    defer { if errFD != outFD { close(errFD) } }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outFD, 1)
    posix_spawn_file_actions_adddup2(&actions, errFD, 2)
    if let closeFrom = addCloseFrom {
        _ = closeFrom(&actions, 3)
    }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaultSignals = sigset_t()
    sigemptyset(&defaultSignals)
    for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaultSignals, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    var merged = ProcessInfo.processInfo.environment
    for (key, value) in environment ?? [:] { merged[key] = value }
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for pointer in argv { free(pointer) }
        for pointer in envp { free(pointer) }
    }
    var pid: pid_t = 0
    let result = argv.withUnsafeBufferPointer { argvBuffer in
        envp.withUnsafeBufferPointer { envpBuffer in
            posix_spawn(&pid, path, &actions, &attributes, argvBuffer.baseAddress!, envpBuffer.baseAddress!)
        }
    }
    guard result == 0 else {
        throw HarnessError("cannot start \(path): \(String(cString: strerror(result)))")
    }
    return pid
}

// MARK: - Long-running children

/// A child process started by a test (a registry, containerd, the archway binary), with stdout and
/// stderr appended to one file. Stop it with ``terminate(timeout:)`` or ``kill()``; if it is
/// still running when the object is released, it is killed with SIGKILL.
public final class ChildProcess: Sendable {
    public let pid: Int32
    public let executable: String
    public let arguments: [String]
    public let outputFile: URL
    private let monitor: ChildExitMonitor

    private init(pid: Int32, executable: String, arguments: [String], outputFile: URL) {
        self.pid = pid
        self.executable = executable
        self.arguments = arguments
        self.outputFile = outputFile
        self.monitor = ChildExitMonitor(pid: pid)
    }

    deinit {
        monitor.send(SIGKILL)
    }

    /// Starts `executable` (a path, or a name looked up like ``requireProgram(_:)``).
    /// `environment` is merged over the test process's own environment.
    /// stdout and stderr are appended to `outputFile`.
    public static func start(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        outputFile: URL
    ) throws -> ChildProcess {
        let pid = try harnessSpawn(
            executable: executable,
            arguments: arguments,
            environment: environment,
            stdoutPath: outputFile.path,
            stderrPath: outputFile.path
        )
        return ChildProcess(pid: pid, executable: executable, arguments: arguments, outputFile: outputFile)
    }

    /// Whether the process has not ended yet.
    public var isRunning: Bool { monitor.termination == nil }

    /// How it ended, once it has.
    public var termination: ProcessTermination? { monitor.termination }

    /// Sends a signal (if the process has not been reaped yet).
    @discardableResult
    public func signal(_ signal: Int32) -> Bool { monitor.send(signal) }

    /// Waits until the process ends by itself; `nil` when `timeout` passes first.
    public func waitForExit(timeout: Duration? = nil) async -> ProcessTermination? {
        await monitor.wait(timeout: timeout)
    }

    /// SIGTERM, then SIGKILL when it has not ended after `timeout`; returns when it is reaped.
    public func terminate(timeout: Duration = .seconds(10)) async {
        guard isRunning else { return }
        monitor.send(SIGTERM)
        if await monitor.wait(timeout: timeout) != nil { return }
        await kill()
    }

    /// SIGKILL; returns when it is reaped.
    public func kill() async {
        monitor.send(SIGKILL)
        _ = await monitor.wait(timeout: nil)
    }

    /// Everything the process wrote to stdout and stderr so far.
    public func output() -> String {
        let data = (try? Data(contentsOf: outputFile)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The resident set size now (`VmRSS` in /proc/<pid>/status), in bytes.
    public func residentMemoryBytes() -> Int? {
        procStatusKilobytes("VmRSS").map { $0 * 1024 }
    }

    /// The peak resident set size (`VmHWM` in /proc/<pid>/status), in bytes.
    public func peakResidentMemoryBytes() -> Int? {
        procStatusKilobytes("VmHWM").map { $0 * 1024 }
    }

    /// The CPU time the process has used so far (user and system), from /proc.
    public func cpuTime() -> Duration? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = text.lastIndex(of: ")")
        else { return nil }
        // After "pid (name) ": state is field 3, utime and stime are fields 14 and 15.
        let fields = text[text.index(after: end)...].split(separator: " ")
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return .milliseconds((user + system) * 1000 / max(ticks, 1))
    }

    private func procStatusKilobytes(_ field: String) -> Int? {
        guard isRunning,
            let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count >= 2, let value = Int(parts[1]) { return value }
        }
        return nil
    }
}

// MARK: - Run to completion

/// How a program run by ``run(_:_:environment:timeout:)`` ended and what it printed.
public struct ProcessResult: Sendable, CustomStringConvertible {
    public let command: [String]
    public let exitCode: Int32
    public let stdoutData: Data
    public let stderrData: Data

    public init(command: [String], exitCode: Int32, stdoutData: Data, stderrData: Data) {
        self.command = command
        self.exitCode = exitCode
        self.stdoutData = stdoutData
        self.stderrData = stderrData
    }

    public var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    public var stderr: String { String(decoding: stderrData, as: UTF8.self) }
    public var succeeded: Bool { exitCode == 0 }

    public var description: String {
        "`\(command.joined(separator: " "))` exited with \(exitCode)\n--- stdout ---\n\(stdout.suffix(4000))\n--- stderr ---\n\(stderr.suffix(4000))"
    }

    /// Throws ``ProcessFailed`` unless the exit code is 0; returns `self` otherwise.
    @discardableResult
    public func requireSuccess() throws -> ProcessResult {
        guard succeeded else { throw ProcessFailed(result: self) }
        return self
    }
}

/// A program exited with a non-zero code.
public struct ProcessFailed: Error, CustomStringConvertible, Sendable {
    public let result: ProcessResult
    public var description: String { result.description }
}

/// A program did not end within its time limit; it was killed.
public struct ProcessTimedOut: Error, CustomStringConvertible, Sendable {
    public let command: [String]
    public let timeout: Duration
    public let stdout: String
    public let stderr: String

    public var description: String {
        "`\(command.joined(separator: " "))` did not finish within \(timeout) and was killed\n--- stdout ---\n\(stdout.suffix(4000))\n--- stderr ---\n\(stderr.suffix(4000))"
    }
}

/// Runs a program to completion and returns its exit code and output. stdout and stderr go to
/// temporary files, so any amount of output is fine. `environment` is merged over the test
/// process's own environment. On timeout the program is killed (SIGKILL) and
/// ``ProcessTimedOut`` is thrown.
public func run(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String]? = nil,
    timeout: Duration = .seconds(120)
) async throws -> ProcessResult {
    let directory = try makeTemporaryDirectory(prefix: "archway-run")
    defer { try? FileManager.default.removeItem(at: directory) }
    let stdoutURL = directory.appendingPathComponent("stdout")
    let stderrURL = directory.appendingPathComponent("stderr")
    let pid = try harnessSpawn(
        executable: executable,
        arguments: arguments,
        environment: environment,
        stdoutPath: stdoutURL.path,
        stderrPath: stderrURL.path
    )
    let monitor = ChildExitMonitor(pid: pid)
    let command = [executable] + arguments
    guard let termination = await monitor.wait(timeout: timeout) else {
        monitor.send(SIGKILL)
        _ = await monitor.wait(timeout: nil)
        throw ProcessTimedOut(
            command: command,
            timeout: timeout,
            stdout: String(decoding: (try? Data(contentsOf: stdoutURL)) ?? Data(), as: UTF8.self),
            stderr: String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self)
        )
    }
    return ProcessResult(
        command: command,
        exitCode: termination.exitCode,
        stdoutData: (try? Data(contentsOf: stdoutURL)) ?? Data(),
        stderrData: (try? Data(contentsOf: stderrURL)) ?? Data()
    )
}
