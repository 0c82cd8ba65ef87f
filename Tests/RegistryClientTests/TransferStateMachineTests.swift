import NIOCore
import Testing

@testable import RegistryClient

/// Every transition of an upstream exchange's decisions, without curl or a task: waiters are
/// plain names.
@Suite struct TransferStateMachineTests {
    typealias Machine = TransferStateMachine<String, String>

    /// The machine, driven by the tests.
    final class Driver {
        var machine = Machine(highWater: 10, lowWater: 4)
        func line(_ text: String) -> String? { machine.receivedHeaderLine(text + "\r\n").map { "\($0.0) \($0.1.status)" } }
        func body(_ count: Int) -> String {
            switch machine.receivedBody(ByteBuffer(repeating: 1, count: count)) {
            case .handOff(let waiter): "handOff \(waiter)"
            case .buffered: "buffered"
            case .pause: "pause"
            }
        }
        func read() -> String {
            switch machine.read() {
            case .chunk(let chunk, let resume): "chunk \(chunk.readableBytes)\(resume ? " resume" : "")"
            case .end: "end"
            case .fail(let error): "fail \(error is CancellationError ? "cancelled" : "\(error)")"
            case .wait(let resume): "wait\(resume ? " resume" : "")"
            }
        }
        func waitForHead(_ waiter: String) -> String {
            switch machine.waitForHead(waiter) {
            case nil: "parked"
            case .success(let head)?: "head \(head.status)"
            case .failure(let error)?: "fail \(error)"
            }
        }
        func park(_ waiter: String) -> Bool { machine.park(waiter) }
        func complete(_ error: (any Error)?) -> String {
            let completion = machine.complete(error)
            var parts: [String] = []
            if let (waiter, outcome) = completion.headWaiter {
                parts.append("\(waiter): " + ((try? outcome.get()).map { "head \($0.status)" } ?? "failed"))
            }
            if let (waiter, outcome) = completion.bodyWaiter {
                let text =
                    switch outcome {
                    case .success(nil): "end"
                    case .success: "chunk"
                    case .failure: "failed"
                    }
                parts.append("\(waiter): \(text)")
            }
            return parts.joined(separator: ", ")
        }
        func cancel() -> String {
            let (first, head, body) = machine.cancel()
            return "\(first) \(head ?? "-") \(body ?? "-")"
        }
    }

    struct Broken: Error, CustomStringConvertible {
        var description: String { "broken" }
    }

    @Test func theFinalHeaderBlockIsTheHeadAndWakesItsWaiter() {
        let transfer = Driver()
        #expect(transfer.waitForHead("reader") == "parked")
        #expect(transfer.line("HTTP/1.1 100 Continue") == nil)
        #expect(transfer.line("") == nil, "an interim block is no head")
        #expect(transfer.line("HTTP/1.1 200 OK") == nil)
        #expect(transfer.line("Content-Length:  42 ") == nil)
        #expect(transfer.line("") == "reader 200")
        #expect(transfer.waitForHead("late") == "head 200", "known heads are answered at once")
        #expect(transfer.machine.waitForHead("again").flatMap { try? $0.get() }?.headers["content-length"] == "42")
    }

    @Test func aBodyIsHandedOffBufferedAndPausedAtTheHighWater() {
        let transfer = Driver()
        #expect(transfer.read() == "wait")
        #expect(transfer.park("reader"))
        #expect(transfer.body(3) == "handOff reader")
        #expect(transfer.body(6) == "buffered")
        #expect(transfer.body(6) == "buffered")
        #expect(transfer.body(1) == "pause", "12 bytes buffered, past the high water")
        #expect(!transfer.park("reader"), "something is buffered: read again")
        #expect(transfer.read() == "chunk 6")
        #expect(transfer.read() == "chunk 6 resume", "drained to the low water: curl goes on")
        #expect(transfer.read() == "wait")
    }

    @Test func aPausedTransferWithNothingBufferedIsResumedByTheWaitingReader() {
        let transfer = Driver()
        #expect(transfer.body(10) == "buffered")
        #expect(transfer.body(1) == "pause")
        // The reader takes the chunk without reaching the low water of a larger chunk...
        transfer.machine = Machine(highWater: 10, lowWater: 0)
        #expect(transfer.body(10) == "buffered")
        #expect(transfer.body(1) == "pause")
        #expect(transfer.read() == "chunk 10 resume")
        #expect(transfer.body(20) == "buffered")
        #expect(transfer.body(1) == "pause")
        #expect(transfer.read() == "chunk 20 resume")
    }

    @Test func theEndWakesBothWaiters() {
        let transfer = Driver()
        _ = transfer.line("HTTP/1.1 200 OK")
        #expect(transfer.waitForHead("head reader") == "parked")
        #expect(transfer.park("body reader"))
        // No blank line came, but the exchange ended well: the status is the head.
        #expect(transfer.complete(nil) == "head reader: head 200, body reader: end")
        #expect(transfer.read() == "end")
        #expect(!transfer.park("late"), "nothing to wait for after the end")
    }

    @Test func aFailureFailsBothWaitersAndEveryLaterRead() {
        let transfer = Driver()
        #expect(transfer.waitForHead("head reader") == "parked")
        #expect(transfer.park("body reader"))
        #expect(transfer.complete(Broken()) == "head reader: failed, body reader: failed")
        #expect(transfer.read() == "fail broken")
        #expect(transfer.waitForHead("late") == "fail broken")
    }

    @Test func anEndWithoutAStatusLineIsAnError() {
        let transfer = Driver()
        #expect(transfer.waitForHead("reader") == "parked")
        #expect(transfer.complete(nil) == "reader: failed")
        #expect(transfer.waitForHead("late").hasPrefix("fail"))
    }

    @Test func bufferedBytesAreReadBeforeTheEnd() {
        let transfer = Driver()
        #expect(transfer.body(5) == "buffered")
        #expect(transfer.complete(nil) == "")
        #expect(transfer.read() == "chunk 5")
        #expect(transfer.read() == "end")
    }

    @Test func cancellingWakesTheWaitersOnceAndDropsWhatComesAfter() {
        let transfer = Driver()
        #expect(transfer.waitForHead("head reader") == "parked")
        #expect(transfer.park("body reader"))
        #expect(transfer.cancel() == "true head reader body reader")
        #expect(transfer.cancel() == "false - -", "curl is told once")
        #expect(transfer.body(5) == "buffered", "bytes after cancelling are dropped, never paused")
        #expect(transfer.read() == "fail cancelled")
        #expect(!transfer.park("late"))
    }

    @Test func cancellingAfterTheEndIsNotACancellation() {
        let transfer = Driver()
        _ = transfer.complete(nil)
        #expect(transfer.cancel() == "false - -")
    }
}
