import Foundation

/// A `Duration` in the units timeouts, metrics and logs are given in.
extension Duration {
    /// Whole milliseconds, truncated.
    public var totalMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds, truncated.
    public var totalNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// Seconds, fractions included.
    public var totalSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension Duration {
    /// Parses a duration as operators write one, in configuration files, flags and query
    /// parameters: a whole number and a unit, `500ms`, `30s`, `5m`, `1h`, `7d`; or `0`. Nil for
    /// anything else (no sign, no fraction, no overflow).
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" {
            self = .zero
            return
        }
        let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(number),
                value < Int64.max / unit.milliseconds
            else {
                continue
            }
            self = .milliseconds(value * unit.milliseconds)
            return
        }
        return nil
    }
}
