import Testing

@testable import ProxyServer

/// Every transition of the sendfile handler's decisions, without a socket.
@Suite struct SendfileStateMachineTests {
    final class Job: SendfileTracked {
        let id: UInt64
        let isComplete: Bool
        init(_ id: UInt64, complete: Bool) {
            self.id = id
            self.isComplete = complete
        }
    }

    typealias Machine = SendfileStateMachine<Job, String>

    /// The machine, driven by the tests; every answer as text.
    final class Driver {
        var machine: Machine
        init(_ machine: Machine = Machine()) { self.machine = machine }
        func enqueue(_ job: Job) -> Bool { machine.enqueue(job) }
        func write(_ part: Machine.Part, _ operation: String) -> String { SendfileStateMachineTests.kind(machine.write(part, operation)) }
        func flushOrClose(_ operation: String) -> String { machine.flushOrClose(operation) == .pass ? "pass" : "hold" }
        func followEnded(_ job: Job, failed: Bool) -> String { SendfileStateMachineTests.kind(machine.followEnded(job, failed: failed)) }
        func removed() -> (jobs: [Job], held: [String]) { machine.removed() }
        var isFollowing: Bool { machine.isFollowing }
        var heldCount: Int { machine.heldCount }
        var isRemoved: Bool { machine.isRemoved }
    }

    static func kind(_ action: Machine.WriteAction) -> String {
        switch action {
        case .pass: "pass"
        case .passWithoutMarker: "passWithoutMarker"
        case .refuse: "refuse"
        case .sendFile(let job): "sendFile \(job.id)"
        case .follow(let job): "follow \(job.id)"
        case .hold: "hold"
        case .overflow(let held): "overflow \(held)"
        }
    }

    static func kind(_ action: Machine.FollowEndAction) -> String {
        switch action {
        case .none: "none"
        case .replay(let held): "replay \(held)"
        case .failAndClose(let held): "failAndClose \(held)"
        }
    }

    @Test func responsesWithoutAFilePassUntouched() {
        let machine = Driver()
        #expect((machine.write(.head(marker: nil), "head")) == "pass")
        #expect((machine.write(.body(bytes: 10), "body")) == "pass")
        #expect((machine.write(.end, "end")) == "pass")
        #expect(machine.flushOrClose("flush") == "pass")
        #expect(machine.flushOrClose("close") == "pass")
    }

    @Test func aStoredFileGoesBeforeItsResponsesEndAndHeadsFindTheirOwnJob() {
        let machine = Driver()
        #expect(machine.enqueue(Job(1, complete: true)))
        #expect(machine.enqueue(Job(2, complete: true)))
        // Heads find their job by id, not by queue order.
        #expect((machine.write(.head(marker: "2"), "head 2")) == "passWithoutMarker")
        #expect((machine.write(.end, "end 2")) == "sendFile 2")
        #expect((machine.write(.head(marker: "1"), "head 1")) == "passWithoutMarker")
        #expect((machine.write(.end, "end 1")) == "sendFile 1")
        #expect(!machine.isFollowing)
    }

    @Test func aMarkedHeadWithoutItsFileIsRefused() {
        let machine = Driver()
        #expect(machine.enqueue(Job(1, complete: true)))
        #expect((machine.write(.head(marker: "7"), "head 7")) == "refuse")
        // The end of a refused response is no job's end.
        #expect((machine.write(.end, "end")) == "pass")
    }

    @Test func whileADownloadIsFollowedEverythingAfterIsHeldAndReplayedInOrder() {
        let machine = Driver()
        let job = Job(1, complete: false)
        #expect(machine.enqueue(job))
        #expect((machine.write(.head(marker: "1"), "head 1")) == "passWithoutMarker")
        #expect((machine.write(.end, "end 1")) == "follow 1")
        #expect(machine.isFollowing)
        #expect(machine.flushOrClose("flush") == "hold")
        #expect((machine.write(.head(marker: nil), "head 2")) == "hold")
        #expect((machine.write(.body(bytes: 2), "body 2")) == "hold")
        #expect((machine.write(.end, "end 2")) == "hold")
        #expect(machine.flushOrClose("close") == "hold")
        #expect(machine.heldCount == 6)
        // Another job's end means nothing; this job's end replays, the response's end first.
        #expect((machine.followEnded(Job(9, complete: false), failed: false)) == "none")
        #expect((machine.followEnded(job, failed: false)) == #"replay ["end 1", "flush", "head 2", "body 2", "end 2", "close"]"#)
        #expect(!machine.isFollowing && machine.heldCount == 0)
        // Replayed, they pass (the end of job 1 is no longer a job's end).
        #expect((machine.write(.end, "end 1")) == "pass")
    }

    @Test func aReplayedResponseForAnotherDownloadHoldsTheRestAnew() {
        let machine = Driver()
        let first = Job(1, complete: false)
        let second = Job(2, complete: false)
        #expect(machine.enqueue(first) && machine.enqueue(second))
        _ = machine.write(.head(marker: "1"), "head 1")
        _ = machine.write(.end, "end 1")
        _ = machine.write(.head(marker: "2"), "head 2")
        _ = machine.write(.end, "end 2")
        _ = machine.flushOrClose("close")
        #expect(machine.followEnded(first, failed: false) == #"replay ["end 1", "head 2", "end 2", "close"]"#)
        let held = ["end 1", "head 2", "end 2", "close"]
        #expect((machine.write(.end, held[0])) == "pass")
        #expect((machine.write(.head(marker: "2"), held[1])) == "passWithoutMarker")
        #expect((machine.write(.end, held[2])) == "follow 2")
        #expect(machine.flushOrClose(held[3]) == "hold")
        #expect((machine.followEnded(second, failed: false)) == #"replay ["end 2", "close"]"#)
    }

    @Test func aFailedDownloadFailsWhatWasHeld() {
        let machine = Driver()
        let job = Job(1, complete: false)
        #expect(machine.enqueue(job))
        _ = machine.write(.head(marker: "1"), "head 1")
        _ = machine.write(.end, "end 1")
        _ = machine.write(.head(marker: nil), "head 2")
        _ = machine.flushOrClose("close")
        #expect((machine.followEnded(job, failed: true)) == #"failAndClose ["end 1", "head 2", "close"]"#)
        #expect(!machine.isFollowing)
    }

    @Test(arguments: ["operations", "bytes"])
    func theHoldQueueIsBounded(limit: String) {
        let machine = Driver(Machine(holdLimit: 4, heldByteLimit: 100))
        #expect(machine.enqueue(Job(1, complete: false)))
        _ = machine.write(.head(marker: "1"), "head 1")
        #expect((machine.write(.end, "end 1")) == "follow 1")
        #expect((machine.write(.head(marker: nil), "head 2")) == "hold")
        if limit == "bytes" {
            #expect((machine.write(.body(bytes: 60), "body a")) == "hold")
            #expect((machine.write(.body(bytes: 60), "body b")) == #"overflow ["end 1", "head 2", "body a", "body b"]"#)
        } else {
            #expect((machine.write(.body(bytes: 1), "body a")) == "hold")
            #expect((machine.write(.end, "end 2")) == "hold")
            #expect((machine.write(.head(marker: nil), "head 3")) == #"overflow ["end 1", "head 2", "body a", "end 2", "head 3"]"#)
        }
        #expect(machine.heldCount == 0)
    }

    @Test func removalEndsEveryJobAndHandsBackWhatWasHeld() {
        let machine = Driver()
        let following = Job(1, complete: false)
        let current = Job(2, complete: true)
        let queued = Job(3, complete: true)
        #expect(machine.enqueue(following) && machine.enqueue(current) && machine.enqueue(queued))
        _ = machine.write(.head(marker: "1"), "head 1")
        _ = machine.write(.end, "end 1")
        _ = machine.flushOrClose("close")
        let (jobs, held) = machine.removed()
        #expect(Set(jobs.map(\.id)) == [1, 2, 3])
        #expect(held == ["end 1", "close"])
        #expect(machine.isRemoved)
        #expect(!machine.enqueue(Job(4, complete: true)), "a job for a removed handler is refused")
        #expect((machine.followEnded(following, failed: false)) == "none")
    }

    @Test func removalWhileAMarkedHeadWaitsForItsEndEndsThatJob() {
        let machine = Driver()
        #expect(machine.enqueue(Job(5, complete: true)))
        _ = machine.write(.head(marker: "5"), "head 5")
        let (jobs, held) = machine.removed()
        #expect(jobs.map(\.id) == [5])
        #expect(held.isEmpty)
    }
}
