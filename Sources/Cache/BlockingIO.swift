import NIOCore
import NIOPosix

/// Runs blocking work (`pwrite`, `pread`, `fdatasync`, hashing a downloaded chunk, a probe
/// file's write) on a thread pool of its own, so the threads that run every request's task (as
/// many as there are cores) never wait on the disk or hash gigabytes.
///
/// The pool has more threads than the machine has cores: a thread waiting in `fdatasync` for a
/// second must not hold up the writes of every other download.
public enum BlockingIO {
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(8, 2 * System.coreCount))
        pool.start()
        return pool
    }()

    public static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await pool.runIfActive(body)
    }
}
