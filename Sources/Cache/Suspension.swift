import Synchronization

/// Tasks suspended until the state they wait on changes: kept inside that state, under its lock.
struct Waiters: Sendable {
    private var next: UInt64 = 0
    private var parked: [UInt64: CheckedContinuation<Void, Never>] = [:]

    fileprivate mutating func ticket() -> UInt64 {
        next += 1
        return next
    }

    fileprivate mutating func park(_ continuation: CheckedContinuation<Void, Never>, ticket: UInt64) {
        parked[ticket] = continuation
    }

    fileprivate mutating func unpark(_ ticket: UInt64) -> CheckedContinuation<Void, Never>? {
        parked.removeValue(forKey: ticket)
    }

    /// Takes every waiter, for the caller to resume once it has let go of the lock.
    mutating func takeAll() -> [CheckedContinuation<Void, Never>] {
        defer { parked = [:] }
        return Array(parked.values)
    }
}

/// A state whose changes tasks can wait for.
protocol WaitableState: Sendable {
    var waiters: Waiters { get set }
}

extension Mutex where Value: WaitableState {
    /// Suspends until whoever changes the state resumes the waiters (``Waiters/takeAll()``), or
    /// until the task is cancelled. Returns at once when `done` holds already; `done` is judged
    /// under the lock that cancellation takes too, so neither a change nor a cancellation can
    /// slip in between.
    func wait(unless done: (borrowing Value) -> Bool) async {
        let ticket = withLock { $0.waiters.ticket() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked = withLock { state -> Bool in
                    if done(state) || Task.isCancelled { return false }
                    state.waiters.park(continuation, ticket: ticket)
                    return true
                }
                if !parked { continuation.resume() }
            }
        } onCancel: {
            withLock { $0.waiters.unpark(ticket) }?.resume()
        }
    }
}
