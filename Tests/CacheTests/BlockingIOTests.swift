import Glibc
import Testing

@testable import Cache

@Suite struct BlockingIOTests {
    static func niceness() -> Int32 { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) }

    /// A download's blocking work runs at a lower priority, and only its own threads do; what a
    /// request waits on does not.
    @Test func downloadsRunBelowTheRestOfTheProcess() async throws {
        let before = Self.niceness()
        let inside = try await BlockingIO.background { Self.niceness() }
        #expect(inside == BlockingIO.niceness)
        #expect(try await BlockingIO.run { Self.niceness() } == before)
        #expect(Self.niceness() == before, "the caller's thread keeps its priority")
        #expect(getpriority(__priority_which_t(PRIO_PGRP.rawValue), 0) <= before, "the process is not reniced")
    }
}
