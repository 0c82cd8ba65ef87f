import NIOCore
import Synchronization

/// One HTTP exchange in flight: the meeting point of the libcurl thread, which feeds it header
/// lines, body bytes and completion, and the Swift task that awaits the head and reads the body.
///
/// Every decision is ``TransferStateMachine``'s, under one lock; this type resumes the
/// continuations it hands back. A slow reader holds back the upstream transfer (curl pauses)
/// instead of growing memory. This type does no I/O itself.
final class Transfer: Sendable {
    let request: UpstreamRequest
    /// The internal address a connection was refused to (``UpstreamRequest/refusesInternalAddresses``).
    let refusedAddress = Mutex<String?>(nil)
    /// What of the request body curl has not taken yet (the curl thread's read position).
    private let unsent: Mutex<ByteBuffer?>
    private let state:
        Mutex<TransferStateMachine<CheckedContinuation<UpstreamResponseHead, any Error>, CheckedContinuation<Wake, any Error>>>

    /// What the curl thread must do after the reader acted.
    enum ReaderAction {
        case none
        case resume
        case cancel
    }

    /// What wakes a reader waiting for the curl side.
    enum Wake {
        case chunk(ByteBuffer)
        case end
        case retry
    }

    init(request: UpstreamRequest, highWater: Int = 1 << 20, lowWater: Int = 256 << 10) {
        self.request = request
        self.unsent = Mutex(request.body)
        self.state = Mutex(TransferStateMachine(highWater: highWater, lowWater: lowWater))
    }

    // MARK: - The curl side

    /// A raw header line, CRLF included.
    func receivedHeaderLine(_ line: String) {
        if let (waiter, head) = state.withLock({ $0.receivedHeaderLine(line) }) {
            waiter.resume(returning: head)
        }
    }

    /// Body bytes from curl. Returns false when the reader is too far behind: curl must pause and
    /// deliver the same bytes again once resumed.
    func receivedBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let buffer = ByteBuffer(bytes: bytes)
        switch state.withLock({ $0.receivedBody(buffer) }) {
        case .handOff(let waiter):
            waiter.resume(returning: .chunk(buffer))
            return true
        case .buffered:
            return true
        case .pause:
            return false
        }
    }

    /// Copies the next bytes of the request body into `buffer`; 0 at its end.
    func sendBody(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        unsent.withLock { unsent in
            guard var body = unsent, let bytes = body.readBytes(length: min(buffer.count, body.readableBytes)) else { return 0 }
            buffer.copyBytes(from: bytes)
            unsent = body
            return bytes.count
        }
    }

    /// Starts the request body again from `offset` (curl resends it on a reused connection that
    /// turned out closed). False when the offset is outside the body.
    func rewindBody(to offset: Int) -> Bool {
        guard var body = request.body, offset >= 0, offset <= body.readableBytes else { return false }
        body.moveReaderIndex(forwardBy: offset)
        unsent.withLock { $0 = body }
        return true
    }

    /// The exchange ended, successfully or not. Wakes whoever waits.
    func complete(_ error: (any Error)?) {
        let completion = state.withLock { $0.complete(error) }
        if let (waiter, outcome) = completion.headWaiter { waiter.resume(with: outcome) }
        if let (waiter, outcome) = completion.bodyWaiter { waiter.resume(with: outcome.map { $0.map(Wake.chunk) ?? .end }) }
    }

    // MARK: - The reader side

    /// Waits for the status line and headers of the final response.
    func head() async throws -> UpstreamResponseHead {
        try await withCheckedThrowingContinuation { continuation in
            if let known = state.withLock({ $0.waitForHead(continuation) }) { continuation.resume(with: known) }
        }
    }

    /// The next body chunk, nil at the end. `act` carries out what the curl side must do.
    func nextChunk(_ act: @Sendable (ReaderAction) -> Void) async throws -> ByteBuffer? {
        while true {
            switch state.withLock({ $0.read() }) {
            case .chunk(let chunk, let resume):
                if resume { act(.resume) }
                return chunk
            case .end:
                return nil
            case .fail(let error):
                throw error
            case .wait(let resume):
                if resume { act(.resume) }
            }
            let wake = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Wake, any Error>) in
                    if !state.withLock({ $0.park(continuation) }) { continuation.resume(returning: .retry) }
                }
            } onCancel: {
                if cancel() { act(.cancel) }
            }
            switch wake {
            case .chunk(let chunk): return chunk
            case .end: return nil
            case .retry: continue
            }
        }
    }

    /// Marks the exchange abandoned by its reader. Returns true the first time.
    @discardableResult
    func cancel() -> Bool {
        let (first, headWaiter, bodyWaiter) = state.withLock { $0.cancel() }
        headWaiter?.resume(throwing: CancellationError())
        bodyWaiter?.resume(throwing: CancellationError())
        return first
    }
}
