import Foundation
import Synchronization
import Testing

@testable import Proxy

@Suite struct TrafficHistoryTests {
    final class Clock: Sendable {
        let seconds = Mutex<Double>(1_800_000_000)
        var now: Date { Date(timeIntervalSince1970: seconds.withLock { $0 }) }
    }

    @Test func minutesRollOverAndOldOnesAreForgotten() {
        let clock = Clock()
        let history = TrafficHistory(now: { clock.now })
        history.count(.hit)
        history.count(.hit)
        history.count(.miss)
        history.served(100)
        history.fetched(40)
        clock.seconds.withLock { $0 += 60 }
        history.count(.hit)
        let last = history.lastMinutes(2)
        #expect(last.map(\.hits) == [2, 1])
        #expect(last.total.bytesFetched == 40 && last.total.bytesServed == 100 && last.total.answers == 4)
        // A day later the same slots stand for new minutes: nothing of the old ones is counted.
        clock.seconds.withLock { $0 += 86_400 }
        #expect(history.lastMinutes(1440).total.answers == 0)
        #expect(history.lastMinutes(1440).count == 1440)
    }
}
