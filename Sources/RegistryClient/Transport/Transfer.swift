import NIOCore
import Synchronization

/// One HTTP exchange in flight: the meeting point of the libcurl thread, which feeds it header
/// lines, body bytes and completion, and the Swift task that awaits the head and reads the body.
///
/// The body is bounded: past `highWater` buffered bytes the curl side is told to pause, and the
/// reader asks to resume once it has drained below `lowWater`. A slow reader therefore holds back
/// the upstream transfer instead of growing memory. This type does no I/O itself.
final class Transfer: Sendable {
    let request: UpstreamRequest
    /// The internal address a connection was refused to (``UpstreamRequest/refusesInternalAddresses``).
    let refusedAddress = Mutex<String?>(nil)
    private let state: Mutex<State>
    private let highWater: Int
    private let lowWater: Int

    /// What the curl thread must do after the reader acted.
    enum ReaderAction {
        case none
        case resume
        case cancel
    }

    private struct State {
        var status: Int?
        var headers = UpstreamHeaders()
        var head: UpstreamResponseHead?
        var headWaiter: CheckedContinuation<UpstreamResponseHead, any Error>?
        var chunks = CircularBuffer<ByteBuffer>()
        var bufferedBytes = 0
        var bodyWaiter: CheckedContinuation<Wake, any Error>?
        var completion: Result<Void, any Error>?
        var paused = false
        var cancelled = false
    }

    init(request: UpstreamRequest, highWater: Int = 1 << 20, lowWater: Int = 256 << 10) {
        self.request = request
        self.highWater = highWater
        self.lowWater = lowWater
        self.state = Mutex(State())
    }

    // MARK: - The curl side

    /// A raw header line, CRLF included. Status lines start a new header block (redirects are not
    /// followed by curl, but `100 Continue` and proxies can still add blocks).
    func receivedHeaderLine(_ line: String) {
        let waiter: (CheckedContinuation<UpstreamResponseHead, any Error>, UpstreamResponseHead)? = state.withLock { state in
            if line.hasPrefix("HTTP/") {
                let parts = line.split(separator: " ", maxSplits: 2)
                state.status = parts.count >= 2 ? Int(parts[1]) : nil
                state.headers = UpstreamHeaders()
                return nil
            }
            let trimmed = line.trimmingSpaces()
            if trimmed.isEmpty {
                guard let status = state.status, status >= 200, state.head == nil else { return nil }
                let head = UpstreamResponseHead(status: status, headers: state.headers)
                state.head = head
                guard let waiter = state.headWaiter else { return nil }
                state.headWaiter = nil
                return (waiter, head)
            }
            if let colon = trimmed.firstIndex(of: ":") {
                let name = String(trimmed[..<colon])
                let value = String(trimmed[trimmed.index(after: colon)...]).trimmingSpaces()
                state.headers.add(name, value)
            }
            return nil
        }
        if let (continuation, head) = waiter {
            continuation.resume(returning: head)
        }
    }

    /// Body bytes from curl. Returns false when the reader is too far behind: curl must pause and
    /// deliver the same bytes again once resumed.
    func receivedBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let buffer = ByteBuffer(bytes: bytes)
        enum Outcome {
            case handOff(CheckedContinuation<Wake, any Error>)
            case buffered
            case pause
        }
        // Decided under one lock: a reader draining between two looks must not make curl
        // believe bytes were taken that were not.
        let outcome: Outcome = state.withLock { state in
            if state.cancelled { return .buffered }
            if let waiter = state.bodyWaiter {
                state.bodyWaiter = nil
                return .handOff(waiter)
            }
            if state.bufferedBytes >= highWater {
                state.paused = true
                return .pause
            }
            state.chunks.append(buffer)
            state.bufferedBytes += buffer.readableBytes
            return .buffered
        }
        switch outcome {
        case .handOff(let waiter):
            waiter.resume(returning: .chunk(buffer))
            return true
        case .buffered:
            return true
        case .pause:
            return false
        }
    }

    /// The exchange ended, successfully or not. Wakes whoever waits.
    func complete(_ error: (any Error)?) {
        let (headWaiter, bodyWaiter, head) = state.withLock { state in
            state.completion = error.map { .failure($0) } ?? .success(())
            if state.head == nil, error == nil, let status = state.status {
                state.head = UpstreamResponseHead(status: status, headers: state.headers)
            }
            defer {
                state.headWaiter = nil
                state.bodyWaiter = nil
            }
            return (state.headWaiter, state.bodyWaiter, state.head)
        }
        if let headWaiter {
            if let head {
                headWaiter.resume(returning: head)
            } else {
                headWaiter.resume(throwing: error ?? TransportError(code: 0, message: "response ended without a status line"))
            }
        }
        if let bodyWaiter {
            if let error { bodyWaiter.resume(throwing: error) } else { bodyWaiter.resume(returning: .end) }
        }
    }

    // MARK: - The reader side

    /// Waits for the status line and headers of the final response.
    func head() async throws -> UpstreamResponseHead {
        try await withCheckedThrowingContinuation { continuation in
            let result: Result<UpstreamResponseHead, any Error>? = state.withLock { state in
                if let head = state.head { return .success(head) }
                if case .failure(let error) = state.completion { return .failure(error) }
                if state.completion != nil {
                    return .failure(TransportError(code: 0, message: "response ended without a status line"))
                }
                state.headWaiter = continuation
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    /// The next body chunk, nil at the end. `act` carries out what the curl side must do.
    func nextChunk(_ act: @Sendable (ReaderAction) -> Void) async throws -> ByteBuffer? {
        while true {
            let step: Step = state.withLock { state in
                if state.cancelled { return .fail(CancellationError()) }
                if let chunk = state.chunks.popFirst() {
                    state.bufferedBytes -= chunk.readableBytes
                    if state.paused, state.bufferedBytes <= lowWater {
                        state.paused = false
                        return .chunk(chunk, resume: true)
                    }
                    return .chunk(chunk, resume: false)
                }
                switch state.completion {
                case .success: return .end
                case .failure(let error): return .fail(error)
                case nil: break
                }
                if state.paused {
                    // Nothing is buffered, so nothing else would wake the transfer.
                    state.paused = false
                    return .wait(resume: true)
                }
                return .wait(resume: false)
            }
            switch step {
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
                    let registered = state.withLock { state in
                        guard state.chunks.isEmpty, state.completion == nil, !state.cancelled else { return false }
                        state.bodyWaiter = continuation
                        return true
                    }
                    if !registered { continuation.resume(returning: .retry) }
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

    private enum Step {
        case chunk(ByteBuffer, resume: Bool)
        case end
        case fail(any Error)
        case wait(resume: Bool)
    }

    /// What wakes a reader waiting for the curl side.
    enum Wake {
        case chunk(ByteBuffer)
        case end
        case retry
    }

    /// Marks the exchange abandoned by its reader. Returns true the first time.
    @discardableResult
    func cancel() -> Bool {
        let (first, headWaiter, bodyWaiter) = state.withLock { state in
            let first = !state.cancelled && state.completion == nil
            state.cancelled = true
            defer {
                state.headWaiter = nil
                state.bodyWaiter = nil
            }
            return (first, state.headWaiter, state.bodyWaiter)
        }
        headWaiter?.resume(throwing: CancellationError())
        bodyWaiter?.resume(throwing: CancellationError())
        return first
    }
}
