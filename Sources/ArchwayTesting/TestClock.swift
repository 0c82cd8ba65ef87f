import Foundation
import Synchronization

/// A clock the test moves by hand.
public final class TestClock: Sendable {
    private let date = Mutex(Date(timeIntervalSince1970: 1_000_000))

    public init() {}

    public var now: Date { date.withLock { $0 } }
    public func advance(_ seconds: TimeInterval) { date.withLock { $0 += seconds } }
}
