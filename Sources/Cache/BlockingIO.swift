import NIOPosix

/// Runs a blocking system call (`fdatasync`, a probe file's write) on NIO's thread pool, so the
/// threads that run every request's task (as many as there are cores) never wait on the disk.
public enum BlockingIO {
    public static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
