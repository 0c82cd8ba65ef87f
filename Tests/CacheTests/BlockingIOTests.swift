import Glibc
import Testing

@testable import Cache

@Suite struct BlockingIOTests {
    static func niceness() -> Int32 { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) }

    /// Blocking work runs at a lower priority, and only its own threads do.
    @Test func theBlockingPoolRunsBelowTheRestOfTheProcess() async throws {
        let before = Self.niceness()
        let inside = try await BlockingIO.run { Self.niceness() }
        #expect(inside == BlockingIO.niceness)
        #expect(Self.niceness() == before, "the caller's thread keeps its priority")
        #expect(getpriority(__priority_which_t(PRIO_PGRP.rawValue), 0) <= before, "the process is not reniced")
    }
}
