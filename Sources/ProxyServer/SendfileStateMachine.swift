/// A job ``SendfileStateMachine`` tracks: what it needs to know of a file waiting for its
/// response.
protocol SendfileTracked: AnyObject {
    /// The value of the response head's marker.
    var id: UInt64 { get }
    /// The content is stored whole (else a download is still writing it).
    var isComplete: Bool { get }
}

/// What ``SendfileHandler`` decides, without I/O: events in (a write, a flush, a close, a
/// download followed to its end, the handler removed), actions out. `Operation` is what the
/// handler holds back while it follows a download (a write with its promise, a flush, a close).
///
/// At most `holdLimit` operations and `heldByteLimit` body bytes are held: a client that
/// pipelines request after request behind a blob still downloading cannot grow the queue
/// without bound; past either limit the connection is closed.
struct SendfileStateMachine<Job: SendfileTracked, Operation> {
    /// What a response part is, as far as the machine cares.
    enum Part: Equatable {
        /// A response head, with the value of its marker field if it has one.
        case head(marker: String?)
        case body(bytes: Int)
        case end
    }

    /// What to do with a write.
    enum WriteAction {
        /// Write it on, as it is.
        case pass
        /// The head of a job's response: write it on without the marker.
        case passWithoutMarker
        /// A marked head whose file is not queued: the promised length cannot be met. Fail the
        /// write and close.
        case refuse
        /// The end of a stored job's response: write the whole file, then the end.
        case sendFile(Job)
        /// The end of a downloading job's response: the end is held; follow the download.
        case follow(Job)
        /// Held, in order, until the followed download ends.
        case hold
        /// The hold queue is full: fail these (what was held and this write) and close.
        case overflow([Operation])
    }

    /// What to do with a flush or a close.
    enum PassOrHold {
        case pass
        case hold
    }

    /// What to do when the followed download has ended.
    enum FollowEndAction {
        /// A job that is no longer followed (the handler was removed): nothing.
        case none
        /// Replay what was held, in order, through the machine again.
        case replay([Operation])
        /// The download failed: fail what was held and close.
        case failAndClose([Operation])
    }

    let holdLimit: Int
    let heldByteLimit: Int
    private var queued: [Job] = []
    /// The job whose marked head has passed, waiting for its response's end.
    private var current: Job?
    /// The job being followed while its download runs. Meanwhile Hummingbird thinks the response
    /// has ended, so it writes the next one, flushes and closes as usual: all held.
    private var following: Job?
    private var held: [Operation] = []
    private var heldBytes = 0
    private(set) var isRemoved = false

    init(holdLimit: Int = 256, heldByteLimit: Int = 1 << 20) {
        self.holdLimit = holdLimit
        self.heldByteLimit = heldByteLimit
    }

    var isFollowing: Bool { following != nil }
    var heldCount: Int { held.count }

    /// A file for the next response marked with its id. False when the handler is gone: the
    /// caller ends the job.
    mutating func enqueue(_ job: Job) -> Bool {
        guard !isRemoved else { return false }
        queued.append(job)
        return true
    }

    mutating func write(_ part: Part, _ operation: Operation) -> WriteAction {
        if following != nil {
            if case .body(let bytes) = part { heldBytes += bytes }
            held.append(operation)
            guard held.count <= holdLimit, heldBytes <= heldByteLimit else {
                defer {
                    held = []
                    heldBytes = 0
                }
                return .overflow(held)
            }
            return .hold
        }
        switch part {
        case .head(nil), .body:
            return .pass
        case .head(let marker?):
            guard let index = queued.firstIndex(where: { String($0.id) == marker }) else { return .refuse }
            current = queued.remove(at: index)
            return .passWithoutMarker
        case .end:
            guard let job = current else { return .pass }
            current = nil
            if job.isComplete { return .sendFile(job) }
            following = job
            held.append(operation)
            return .follow(job)
        }
    }

    /// A flush or a close: held while a download is followed, so nothing overtakes the file.
    mutating func flushOrClose(_ operation: Operation) -> PassOrHold {
        guard following != nil else { return .pass }
        held.append(operation)
        return .hold
    }

    /// The followed download was sent to its end (`failed` false) or stopped.
    mutating func followEnded(_ job: Job, failed: Bool) -> FollowEndAction {
        guard !isRemoved, following === job else { return .none }
        following = nil
        let operations = held
        held = []
        heldBytes = 0
        return failed ? .failAndClose(operations) : .replay(operations)
    }

    /// The handler left the pipeline (the connection closed): every job still known, to end, and
    /// every operation held, to fail.
    mutating func removed() -> (jobs: [Job], held: [Operation]) {
        isRemoved = true
        let jobs = queued + [current, following].compactMap { $0 }
        let operations = held
        queued = []
        current = nil
        following = nil
        held = []
        heldBytes = 0
        return (jobs, operations)
    }
}
