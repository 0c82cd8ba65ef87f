/// One byte range of a representation of known length, as a `Range` header asks for it (RFC 9110 §14).
///
/// Archway serves one range or the whole blob: a header it cannot use as one range (malformed,
/// another unit, several ranges) is ignored, which RFC 9110 allows, and the client gets a 200.
///
/// ```swift
/// switch ByteRange.parse(request.headers[.range], length: size) {
/// case .none: // 200 with the whole blob
/// case .satisfiable(let range): // 206, Content-Range: range.contentRange(length: size)
/// case .unsatisfiable: // 416, Content-Range: ByteRange.unsatisfiedContentRange(length: size)
/// }
/// ```
public struct ByteRange: Hashable, Sendable {
    /// The first byte, inclusive.
    public let lowerBound: Int64
    /// The last byte, inclusive.
    public let upperBound: Int64

    /// A range of `lowerBound...upperBound`; both must be at least 0 and in order.
    public init(lowerBound: Int64, upperBound: Int64) {
        precondition(0 <= lowerBound && lowerBound <= upperBound, "invalid byte range \(lowerBound)-\(upperBound)")
        self.lowerBound = lowerBound
        self.upperBound = upperBound
    }

    /// The number of bytes in the range.
    public var count: Int64 { upperBound - lowerBound + 1 }

    /// What a `Range` header means for a representation of a given length.
    public enum Parsed: Hashable, Sendable {
        /// No range to honour: the header is absent, malformed, of another unit, or asks for
        /// several ranges. Serve the whole representation.
        case none
        /// Serve this range with 206.
        case satisfiable(ByteRange)
        /// Answer 416: the range starts at or past the end (or is a zero-length suffix).
        case unsatisfiable
    }

    /// Reads a `Range` header for a representation of `length` bytes.
    ///
    /// | header | length 1000 |
    /// |---|---|
    /// | `bytes=0-99` | 0...99 |
    /// | `bytes=900-5000` | 900...999 (end clamped) |
    /// | `bytes=100-` | 100...999 |
    /// | `bytes=-50` | 950...999 (suffix) |
    /// | `bytes=1000-`, `bytes=-0` | unsatisfiable |
    /// | `bytes=10-5`, `bytes=0-1,5-6`, `items=0-1`, overflowing numbers | none |
    public static func parse(_ header: String?, length: Int64) -> Parsed {
        guard let header, length >= 0 else {
            return .none
        }
        let bytes = Array(header.utf8)
        // range-unit "=" range-set, unit case-insensitive, whitespace tolerated around the parts.
        guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")),
            String(decoding: trimmed(bytes[..<equals]), as: UTF8.self).lowercased() == "bytes"
        else {
            return .none
        }
        let set = bytes[(equals + 1)...]
        guard !set.contains(UInt8(ascii: ",")), let dash = set.firstIndex(of: UInt8(ascii: "-")) else {
            return .none
        }
        let first = trimmed(set[..<dash])
        let last = trimmed(set[(dash + 1)...])
        if first.isEmpty {
            // suffix-range: the last N bytes.
            guard let suffix = number(last) else {
                return .none
            }
            guard suffix > 0, length > 0 else {
                return .unsatisfiable
            }
            return .satisfiable(ByteRange(lowerBound: max(0, length - suffix), upperBound: length - 1))
        }
        guard let start = number(first) else {
            return .none
        }
        var end = length - 1
        if !last.isEmpty {
            guard let value = number(last), value >= start else {
                return .none
            }
            end = min(value, length - 1)
        }
        guard start < length else {
            return .unsatisfiable
        }
        return .satisfiable(ByteRange(lowerBound: start, upperBound: end))
    }

    /// The `Content-Range` of a 206: `bytes 0-99/1000`.
    public func contentRange(length: Int64) -> String {
        "bytes \(lowerBound)-\(upperBound)/\(length)"
    }

    /// The `Content-Range` of a 416: `bytes */1000`.
    public static func unsatisfiedContentRange(length: Int64) -> String {
        "bytes */\(length)"
    }

    /// A non-negative decimal of ASCII digits only (no sign, no space), nil when it overflows.
    private static func number(_ digits: ArraySlice<UInt8>) -> Int64? {
        guard !digits.isEmpty else {
            return nil
        }
        var value: Int64 = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
                return nil
            }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 {
                return nil
            }
            value = sum
        }
        return value
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let start = bytes.firstIndex(where: { !isSpace($0) }), let end = bytes.lastIndex(where: { !isSpace($0) }) else {
            return []
        }
        return bytes[start...end]
    }
}
