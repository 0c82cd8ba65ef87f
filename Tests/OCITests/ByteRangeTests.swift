import OCI
import Testing

struct ByteRangeTests {
    static func range(_ lower: Int64, _ upper: Int64) -> ByteRange.Parsed {
        .satisfiable(ByteRange(lowerBound: lower, upperBound: upper))
    }

    @Test(arguments: [
        ("bytes=0-99", 1000, range(0, 99)),
        ("bytes=0-0", 1000, range(0, 0)),
        ("bytes=999-999", 1000, range(999, 999)),
        ("bytes=100-", 1000, range(100, 999)),
        ("bytes=900-5000", 1000, range(900, 999)),
        ("bytes=0-9223372036854775807", 1000, range(0, 999)),
        ("bytes=-50", 1000, range(950, 999)),
        ("bytes=-1000", 1000, range(0, 999)),
        ("bytes=-5000", 1000, range(0, 999)),
        ("bytes=0-", 1, range(0, 0)),
        ("Bytes=0-1", 1000, range(0, 1)),
        ("BYTES=0-1", 1000, range(0, 1)),
        ("  bytes = 10 - 20  ", 1000, range(10, 20)),
        ("bytes=\t-7", 1000, range(993, 999)),
        ("bytes=007-008", 1000, range(7, 8)),
        ("bytes=1000-", 1000, .unsatisfiable),
        ("bytes=1000-2000", 1000, .unsatisfiable),
        ("bytes=5000-", 1000, .unsatisfiable),
        ("bytes=-0", 1000, .unsatisfiable),
        ("bytes=0-", 0, .unsatisfiable),
        ("bytes=-1", 0, .unsatisfiable),
        ("bytes=0-0", 0, .unsatisfiable),
        ("bytes=10-5", 1000, ByteRange.Parsed.none),
        ("bytes=2000-1500", 1000, .none),
        ("bytes=0-1,5-6", 1000, .none),
        ("bytes=0-1,", 1000, .none),
        ("bytes=", 1000, .none),
        ("bytes=-", 1000, .none),
        ("bytes=5", 1000, .none),
        ("bytes=a-b", 1000, .none),
        ("bytes=+1-2", 1000, .none),
        ("bytes=--5", 1000, .none),
        ("bytes=1-2-3", 1000, .none),
        ("bytes=1 2-3", 1000, .none),
        ("bytes=0x10-20", 1000, .none),
        ("bytes=99999999999999999999-", 1000, .none),
        ("bytes=0-99999999999999999999", 1000, .none),
        ("bytes=-99999999999999999999", 1000, .none),
        ("bytes 0-1", 1000, .none),
        ("items=0-1", 1000, .none),
        ("bytesx=0-1", 1000, .none),
        ("=0-1", 1000, .none),
        ("", 1000, .none),
        ("bytes=0-1\0", 1000, .none),
        ("bytes=٠-١", 1000, .none),
        ("bytes=0-1", -1, .none),
    ])
    func parsesRangeHeaders(header: String, length: Int64, expected: ByteRange.Parsed) {
        #expect(ByteRange.parse(header, length: length) == expected)
    }

    @Test func absentHeaderIsNone() {
        #expect(ByteRange.parse(nil, length: 1000) == .none)
    }

    @Test(
        arguments: [
            (ByteRange(lowerBound: 0, upperBound: 99), 1000, "bytes 0-99/1000", 100),
            (ByteRange(lowerBound: 999, upperBound: 999), 1000, "bytes 999-999/1000", 1),
            (ByteRange(lowerBound: 0, upperBound: Int64.max - 1), Int64.max, "bytes 0-9223372036854775806/9223372036854775807", Int64.max),
        ] as [(ByteRange, Int64, String, Int64)])
    func rendersContentRange(range: ByteRange, length: Int64, header: String, count: Int64) {
        #expect(range.contentRange(length: length) == header)
        #expect(range.count == count)
    }

    @Test func rendersUnsatisfiedContentRange() {
        #expect(ByteRange.unsatisfiedContentRange(length: 1000) == "bytes */1000")
    }
}
