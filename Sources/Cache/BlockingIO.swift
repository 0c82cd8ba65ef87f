import Glibc
import NIOCore
import NIOPosix

/// Runs blocking work (`pwrite`, `pread`, `fdatasync`, hashing a downloaded chunk, a probe
/// file's write) on a thread pool of its own, so the threads that run every request's task (as
/// many as there are cores) never wait on the disk or hash gigabytes.
///
/// The pool has more threads than the machine has cores: a thread waiting in `fdatasync` for a
/// second must not hold up the writes of every other download. Its threads run at a lower
/// priority (nice 5) than the event loops and the cooperative pool: downloads are background
/// work, and a warm answer should not wait for a core behind eight of them hashing.
public enum BlockingIO {
    static let niceness: Int32 = 5

    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(8, 2 * System.coreCount))
        pool.start()
        return pool
    }()

    public static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await pool.runIfActive {
            // On Linux `who` 0 is the calling thread, not the process (a thread is a task
            // there); a syscall of well under a microsecond, next to a 64 KiB write and hash.
            let thread = __priority_which_t(PRIO_PROCESS.rawValue)
            if getpriority(thread, 0) < niceness { setpriority(thread, 0, niceness) }
            return try body()
        }
    }
}
