import Cache
import Testing

@Suite struct RecentlyUsedTests {
    @Test func keepsWhatWasUsedRecentlyWithinTheBudget() {
        let memo = RecentlyUsed<Int, String>(budget: 8)
        for key in 0..<5 { memo.set("v\(key)", for: key) }  // the fifth passes half the budget: all age
        #expect(memo.value(for: 0) == "v0")  // used again: young once more
        for key in 5..<9 { memo.set("v\(key)", for: key) }  // ages again, dropping 1...4
        #expect(memo.value(for: 0) == "v0")
        #expect(memo.value(for: 1) == nil)
        #expect(memo.value(for: 4) == nil)
        #expect(memo.value(for: 8) == "v8")
        let kept = (0..<9).filter { memo.value(for: $0) != nil }
        #expect(kept.count <= 8, "never more than the budget: \(kept)")
    }

    @Test func costsCountAgainstTheBudgetAndOversizedValuesAreNotKept() {
        let memo = RecentlyUsed<String, [UInt8]>(budget: 100) { $0.count }
        memo.set(Array(repeating: 1, count: 60), for: "huge")
        #expect(memo.value(for: "huge") == nil)
        memo.set(Array(repeating: 1, count: 30), for: "a")
        memo.set(Array(repeating: 2, count: 30), for: "b")  // 60 > 50: a and b age
        memo.set(Array(repeating: 3, count: 30), for: "c")
        #expect(memo.value(for: "a")?.count == 30)
        memo.set(Array(repeating: 4, count: 30), for: "a")  // replacing does not count twice
        #expect(memo.value(for: "a")?.first == 4)
    }

    @Test func updatesAndRemovalsAreSeen() {
        let memo = RecentlyUsed<String, Int>(budget: 10)
        memo.set(1, for: "one")
        memo.set(2, for: "two")
        memo.update("one") { $0 += 10 }
        memo.update("missing") { $0 = 99 }
        #expect(memo.value(for: "one") == 11)
        #expect(memo.value(for: "missing") == nil)
        memo.remove("one")
        #expect(memo.value(for: "one") == nil)
        memo.removeAll { $0 == 2 }
        #expect(memo.value(for: "two") == nil)
    }
}
