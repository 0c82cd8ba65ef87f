import OCI
import Testing

@Suite struct DurationUnitsTests {
    @Test func unitsTruncateAndKeepFractions() {
        let duration = Duration.seconds(2) + .microseconds(1_500)
        #expect(duration.totalMilliseconds == 2_001)
        #expect(duration.totalNanoseconds == 2_001_500_000)
        #expect(duration.totalSeconds == 2.0015)
        #expect(Duration.zero.totalMilliseconds == 0)
        #expect(Duration.milliseconds(999).totalSeconds == 0.999)
    }
}
