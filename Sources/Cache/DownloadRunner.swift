/// Who runs a store's downloads.
///
/// - ``group()``: as child tasks of ``run()``, which the server runs as a service: shutdown
///   closes it, waits for the downloads running (structured: none outlives the service) and
///   cancels them past its bound.
/// - ``detached()``: each on a task of its own, for the command line and tests, where nothing
///   runs a service.
public final class DownloadRunner: Sendable {
    public typealias Job = @Sendable () async -> Void

    private let jobs: AsyncStream<Job>?
    private let submissions: AsyncStream<Job>.Continuation?

    private init(jobs: AsyncStream<Job>?, submissions: AsyncStream<Job>.Continuation?) {
        self.jobs = jobs
        self.submissions = submissions
    }

    /// Downloads run as child tasks of ``run()``.
    public static func group() -> DownloadRunner {
        // Unbounded, but a job waits here only until run() takes it: at most one per digest
        // being downloaded.
        let (jobs, submissions) = AsyncStream<Job>.makeStream()
        return DownloadRunner(jobs: jobs, submissions: submissions)
    }

    /// Downloads run on tasks of their own.
    public static func detached() -> DownloadRunner {
        DownloadRunner(jobs: nil, submissions: nil)
    }

    /// Starts a download; throws ``StorageError/closed`` once the runner is closed.
    func start(_ job: @escaping Job) throws(StorageError) {
        guard let submissions else {
            Task.detached { await job() }
            return
        }
        guard case .enqueued = submissions.yield(job) else { throw StorageError.closed }
    }

    /// Runs the downloads handed over, each as a child task, until ``close()``; then returns once
    /// the last one has ended. Cancelling the calling task cancels them, and drops one handed
    /// over but not yet started (the process is going away). Returns at once for a detached
    /// runner.
    public func run() async {
        guard let jobs else { return }
        await withDiscardingTaskGroup { group in
            for await job in jobs {
                group.addTask { await job() }
            }
        }
    }

    /// Starts no download from now on; those running go on.
    public func close() {
        submissions?.finish()
    }
}
