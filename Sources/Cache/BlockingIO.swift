import Glibc
import NIOCore
import NIOPosix

/// Runs blocking work (`pwrite`, `pread`, `fdatasync`, hashing a downloaded chunk, a probe
/// file's write) on thread pools of their own, so the threads that run every request's task (as
/// many as there are cores) never wait on the disk or hash gigabytes.
///
/// Two pools, so that what a client waits for never queues behind downloads:
/// - ``run(_:)``: reads and small writes a request waits on, at the process's priority;
/// - ``background(_:)``: a download's writes, hashing and final `fdatasync`, at nice 5, so that
///   with eight downloads hashing on a 2-core machine a warm answer does not wait for a core.
/// Each has more threads than the machine has cores: a thread waiting in `fdatasync` for a
/// second must not hold up the others.
public enum BlockingIO {
    static let niceness: Int32 = 5
    private static let threads = max(8, 2 * System.coreCount)

    private static let interactive: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        return pool
    }()

    private static let downloads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        return pool
    }()

    /// Blocking work a request waits on.
    public static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await interactive.runIfActive(body)
    }

    /// A download's blocking work, below everything else in priority.
    public static func background<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await downloads.runIfActive {
            // On Linux `who` 0 is the calling thread, not the process (a thread is a task
            // there); a syscall of well under a microsecond, next to a 64 KiB write and hash.
            let thread = __priority_which_t(PRIO_PROCESS.rawValue)
            if getpriority(thread, 0) < niceness { setpriority(thread, 0, niceness) }
            return try body()
        }
    }
}
