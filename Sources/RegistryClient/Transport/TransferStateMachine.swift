import NIOCore

/// What ``Transfer`` decides, without I/O or locks: the libcurl thread's events (a header line,
/// body bytes, the end) and the reader's (wait for the head, take a chunk, give up) in, what to
/// resume and what curl must do out. `HeadWaiter` and `BodyWaiter` are the suspended reader's
/// continuations (in tests, any value).
///
/// The body is bounded: past `highWater` buffered bytes curl is told to pause, and the reader
/// asks to resume it once it has drained to `lowWater`.
struct TransferStateMachine<HeadWaiter, BodyWaiter> {
    let highWater: Int
    let lowWater: Int
    private var status: Int?
    private var headers = UpstreamHeaders()
    private var head: UpstreamResponseHead?
    private var headWaiter: HeadWaiter?
    private var chunks = CircularBuffer<ByteBuffer>()
    private var bufferedBytes = 0
    private var bodyWaiter: BodyWaiter?
    private var completion: Result<Void, any Error>?
    private var paused = false
    private var cancelled = false

    init(highWater: Int, lowWater: Int) {
        self.highWater = highWater
        self.lowWater = lowWater
    }

    // MARK: - The curl side

    /// A raw header line, CRLF included. Status lines start a new header block (redirects are not
    /// followed by curl, but `100 Continue` and proxies can still add blocks). Returns the reader
    /// to resume with the head, once the final block has ended.
    mutating func receivedHeaderLine(_ line: String) -> (HeadWaiter, UpstreamResponseHead)? {
        if line.hasPrefix("HTTP/") {
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count >= 2 ? Int(parts[1]) : nil
            headers = UpstreamHeaders()
            return nil
        }
        let trimmed = line.trimmingSpaces()
        if trimmed.isEmpty {
            guard let status, status >= 200, head == nil else { return nil }
            let head = UpstreamResponseHead(status: status, headers: headers)
            self.head = head
            guard let waiter = headWaiter else { return nil }
            headWaiter = nil
            return (waiter, head)
        }
        if let colon = trimmed.firstIndex(of: ":") {
            headers.add(String(trimmed[..<colon]), String(trimmed[trimmed.index(after: colon)...]).trimmingSpaces())
        }
        return nil
    }

    enum BodyAction {
        /// Give the chunk to this waiting reader.
        case handOff(BodyWaiter)
        /// Kept for the reader (or dropped: the reader is gone).
        case buffered
        /// The reader is too far behind: curl must pause and deliver the same bytes again later.
        case pause
    }

    /// Body bytes from curl, decided at once: a reader draining between two looks must not make
    /// curl believe bytes were taken that were not.
    mutating func receivedBody(_ buffer: ByteBuffer) -> BodyAction {
        if cancelled { return .buffered }
        if let waiter = bodyWaiter {
            bodyWaiter = nil
            return .handOff(waiter)
        }
        if bufferedBytes >= highWater {
            paused = true
            return .pause
        }
        chunks.append(buffer)
        bufferedBytes += buffer.readableBytes
        return .buffered
    }

    /// Whom to wake when the exchange ends, and with what.
    struct Completion {
        var headWaiter: (HeadWaiter, Result<UpstreamResponseHead, any Error>)?
        var bodyWaiter: (BodyWaiter, Result<ByteBuffer?, any Error>)?
    }

    /// The exchange ended, successfully (`error` nil) or not.
    mutating func complete(_ error: (any Error)?) -> Completion {
        completion = error.map { .failure($0) } ?? .success(())
        if head == nil, error == nil, let status { head = UpstreamResponseHead(status: status, headers: headers) }
        var result = Completion()
        if let waiter = headWaiter {
            let outcome: Result<UpstreamResponseHead, any Error> =
                if let head { .success(head) } else { .failure(error ?? Self.noStatusLine) }
            result.headWaiter = (waiter, outcome)
        }
        if let waiter = bodyWaiter { result.bodyWaiter = (waiter, error.map { .failure($0) } ?? .success(nil)) }
        headWaiter = nil
        bodyWaiter = nil
        return result
    }

    static var noStatusLine: TransportError { TransportError(code: 0, message: "response ended without a status line") }

    // MARK: - The reader side

    /// The head if it is known (or why there will be none); else the waiter is kept.
    mutating func waitForHead(_ waiter: HeadWaiter) -> Result<UpstreamResponseHead, any Error>? {
        if let head { return .success(head) }
        if case .failure(let error) = completion { return .failure(error) }
        if completion != nil { return .failure(Self.noStatusLine) }
        headWaiter = waiter
        return nil
    }

    enum ReadStep {
        /// A buffered chunk; `resume`: curl was paused and may go on.
        case chunk(ByteBuffer, resume: Bool)
        case end
        case fail(any Error)
        /// Nothing yet: park the reader (``park(_:)``); `resume`: wake curl first, since nothing
        /// buffered would.
        case wait(resume: Bool)
    }

    /// What the reader gets next.
    mutating func read() -> ReadStep {
        if cancelled { return .fail(CancellationError()) }
        if let chunk = chunks.popFirst() {
            bufferedBytes -= chunk.readableBytes
            if paused, bufferedBytes <= lowWater {
                paused = false
                return .chunk(chunk, resume: true)
            }
            return .chunk(chunk, resume: false)
        }
        switch completion {
        case .success: return .end
        case .failure(let error): return .fail(error)
        case nil: break
        }
        if paused {
            paused = false
            return .wait(resume: true)
        }
        return .wait(resume: false)
    }

    /// Parks the reader until a chunk, the end or a cancellation; false when something arrived
    /// meanwhile (read again).
    mutating func park(_ waiter: BodyWaiter) -> Bool {
        guard chunks.isEmpty, completion == nil, !cancelled else { return false }
        bodyWaiter = waiter
        return true
    }

    /// The reader abandoned the exchange: `first` the first time (curl must be told), and the
    /// waiters to fail.
    mutating func cancel() -> (first: Bool, headWaiter: HeadWaiter?, bodyWaiter: BodyWaiter?) {
        let first = !cancelled && completion == nil
        cancelled = true
        defer {
            headWaiter = nil
            bodyWaiter = nil
        }
        return (first, headWaiter, bodyWaiter)
    }
}
