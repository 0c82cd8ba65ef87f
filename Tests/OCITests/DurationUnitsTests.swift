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

    /// One parser for every duration an operator writes: configuration, `--since`, `?since=`.
    @Test(arguments: [
        ("5m", Duration.seconds(300)), ("30s", .seconds(30)), ("1h", .seconds(3600)), ("500ms", .milliseconds(500)), ("0", .zero),
        ("24h", .seconds(86400)), ("7d", .seconds(604_800)), (" 10s ", .seconds(10)),
    ])
    func durationsAsOperatorsWriteThem(text: String, duration: Duration) {
        #expect(Duration(parsing: text) == duration)
    }

    @Test(arguments: ["", "5", "-5m", "1.5h", "5 m", "5M", "m", "9223372036854775807d", "٣s", "+5s", "0s0"])
    func notDurations(text: String) {
        #expect(Duration(parsing: text) == nil)
    }
}
