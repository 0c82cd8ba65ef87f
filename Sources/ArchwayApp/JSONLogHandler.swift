import Foundation
import Logging
import OCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Logs one JSON object per line: `ts`, `level`, `msg`, `label`, then the metadata as fields.
/// What happened is data, not prose, so it can be queried (`jq 'select(.event == ...)'`).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let output: JSONLogOutput

    public init(label: String, output: JSONLogOutput = .standardError) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Self.timestamp()),
            ("level", event.level.rawValue),
            ("msg", event.message.description),
            ("label", label),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            fields.append((key, merged[key]!.description))
        }
        var line = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { line += "," }
            line += key.jsonQuoted + ":" + value.jsonQuoted
        }
        line += "}\n"
        output.write(line)
    }

    /// UTC, millisecond precision: `2026-11-29T15:13:17.123Z`. Formatted by hand: this runs
    /// for every access-log line.
    static func timestamp() -> String {
        let now = Date().timeIntervalSince1970
        var seconds = time_t(now.rounded(.down))
        let milliseconds = Int32(min(999, max(0, (now - now.rounded(.down)) * 1000)))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text = ""
        text.reserveCapacity(24)
        func append(_ value: Int32, digits: Int, then separator: String) {
            let decimal = String(value)
            text += String(repeating: "0", count: max(0, digits - decimal.count)) + decimal + separator
        }
        append(parts.tm_year + 1900, digits: 4, then: "-")
        append(parts.tm_mon + 1, digits: 2, then: "-")
        append(parts.tm_mday, digits: 2, then: "T")
        append(parts.tm_hour, digits: 2, then: ":")
        append(parts.tm_min, digits: 2, then: ":")
        append(parts.tm_sec, digits: 2, then: ".")
        append(milliseconds, digits: 3, then: "Z")
        return text
    }
}

/// Where JSON log lines go; lines are written whole, never interleaved.
public final class JSONLogOutput: Sendable {
    private let handle: Mutex<FileHandle>

    public init(handle: FileHandle) {
        self.handle = Mutex(handle)
    }

    public static let standardError = JSONLogOutput(handle: .standardError)

    func write(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            handle.withLock { handle in
                var written = 0
                while written < bytes.count {
                    let result = Glibc.write(handle.fileDescriptor, bytes.baseAddress! + written, bytes.count - written)
                    if result > 0 {
                        written += result
                    } else if result < 0 && errno == EINTR {
                        continue
                    } else {
                        return  // a log line that cannot be written is dropped, not retried forever
                    }
                }
            }
        }
    }
}
