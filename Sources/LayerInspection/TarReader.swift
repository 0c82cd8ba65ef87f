/// One member of a tar stream.
public struct TarEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case file
        /// A hard link to an earlier member (its path as written in the archive).
        case hardLink(String)
        case symbolicLink(String)
        case directory
        /// Devices, FIFOs and the rest: nothing that runs.
        case other
    }

    /// The path as written in the archive (not cleaned).
    public var path: String
    public var kind: Kind
    public var mode: UInt32
    public var size: Int64
}

/// The tar stream is not one.
public struct TarError: Error, CustomStringConvertible {
    public var description: String
}

/// Reads a tar stream (ustar, GNU long names, PAX extended headers) as its bytes arrive, without
/// keeping it: each member is handed to ``onEntry``, which answers how many of the member's
/// first bytes it wants (``onContent`` then gets them). Content nobody wants is skipped by
/// counting. Headers are checked (checksum, sizes); a stream that is not tar stops with a
/// ``TarError``. Extended headers are bounded (1 MiB of PAX records, 64 KiB for a long name).
public final class TarReader {
    private enum State {
        case header
        /// Content of the member being read: bytes left, then padding.
        case content(remaining: Int64, padding: Int)
        /// Content of an extended header being collected.
        case extended(kind: UInt8, remaining: Int64, padding: Int)
        case padding(Int)
        case end
    }

    static let block = 512
    static let paxLimit = 1 << 20
    static let longNameLimit = 64 << 10

    /// Called for every member; returns how many leading content bytes to hand to ``onContent``.
    public var onEntry: (TarEntry) -> Int = { _ in 0 }
    /// A member's leading bytes, as many as ``onEntry`` asked for (fewer when it is shorter).
    public var onContent: (TarEntry, [UInt8]) -> Void = { _, _ in }

    private var state = State.header
    private var header: [UInt8] = []
    private var zeroBlocks = 0
    private var current: TarEntry?
    private var wanted = 0
    private var captured: [UInt8] = []
    private var extendedBytes: [UInt8] = []
    /// Overrides for the next member, from PAX records or GNU long-name members.
    private var nextPath: String?
    private var nextLink: String?
    private var nextSize: Int64?

    public init() {
        header.reserveCapacity(Self.block)
    }

    /// Whether the end-of-archive marker was read.
    public var isFinished: Bool {
        if case .end = state { true } else { false }
    }

    public func feed(_ input: UnsafeRawBufferPointer) throws(TarError) {
        var offset = 0
        while offset < input.count {
            switch state {
            case .end:
                return
            case .header:
                let take = min(Self.block - header.count, input.count - offset)
                header.append(contentsOf: input[offset..<offset + take])
                offset += take
                if header.count == Self.block {
                    try readHeader()
                    header.removeAll(keepingCapacity: true)
                }
            case .padding(let count):
                let take = min(count, input.count - offset)
                offset += take
                state = count == take ? .header : .padding(count - take)
            case .content(let remaining, let padding):
                let take = Int(min(remaining, Int64(input.count - offset)))
                if captured.count < wanted {
                    captured.append(contentsOf: input[offset..<offset + min(take, wanted - captured.count)])
                }
                offset += take
                if Int64(take) == remaining {
                    finishMember()
                    state = padding > 0 ? .padding(padding) : .header
                } else {
                    state = .content(remaining: remaining - Int64(take), padding: padding)
                }
            case .extended(let kind, let remaining, let padding):
                let take = Int(min(remaining, Int64(input.count - offset)))
                extendedBytes.append(contentsOf: input[offset..<offset + take])
                offset += take
                if Int64(take) == remaining {
                    try finishExtended(kind)
                    state = padding > 0 ? .padding(padding) : .header
                } else {
                    state = .extended(kind: kind, remaining: remaining - Int64(take), padding: padding)
                }
            }
        }
    }

    private func readHeader() throws(TarError) {
        if header.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            if zeroBlocks == 2 { state = .end }
            return
        }
        zeroBlocks = 0
        guard let recorded = Self.number(header[148..<156]) else { throw TarError(description: "a header's checksum is not a number") }
        var sum: Int64 = 0
        for (index, byte) in header.enumerated() { sum += Int64((148..<156).contains(index) ? 0x20 : byte) }
        guard sum == recorded else { throw TarError(description: "a header's checksum does not match (not a tar stream)") }
        guard let size = Self.number(header[124..<136]), size >= 0, size < 1 << 50 else {
            throw TarError(description: "a member's size is not a number")
        }
        let typeflag = header[156]
        let padding = Int((Int64(Self.block) - size % Int64(Self.block)) % Int64(Self.block))
        switch typeflag {
        case UInt8(ascii: "x"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            let limit = typeflag == UInt8(ascii: "x") ? Self.paxLimit : Self.longNameLimit
            guard size <= limit else { throw TarError(description: "an extended header of \(size) bytes is over \(limit)") }
            extendedBytes.removeAll(keepingCapacity: true)
            state = size == 0 ? .header : .extended(kind: typeflag, remaining: size, padding: padding)
            if size == 0 { try finishExtended(typeflag) }
            return
        case UInt8(ascii: "g"):
            // Global PAX records: nothing a scan needs.
            state = size == 0 ? .header : .content(remaining: size, padding: padding)
            current = nil
            wanted = 0
            return
        default:
            break
        }
        var path = Self.string(header[0..<100])
        if header[257..<262].elementsEqual("ustar".utf8) {
            let prefix = Self.string(header[345..<500])
            if !prefix.isEmpty { path = prefix + "/" + path }
        }
        var link = Self.string(header[157..<257])
        if let nextPath { path = nextPath }
        if let nextLink { link = nextLink }
        let memberSize = nextSize ?? size
        (nextPath, nextLink, nextSize) = (nil, nil, nil)
        let kind: TarEntry.Kind =
            switch typeflag {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): .file
            case UInt8(ascii: "1"): .hardLink(link)
            case UInt8(ascii: "2"): .symbolicLink(link)
            case UInt8(ascii: "5"): .directory
            default: .other
            }
        let mode = UInt32(truncatingIfNeeded: Self.number(header[100..<108]) ?? 0)
        // Links and directories carry no content, whatever their size field says.
        let contentSize: Int64 =
            switch kind {
            case .file, .other: memberSize
            default: 0
            }
        let entry = TarEntry(path: path, kind: kind, mode: mode, size: contentSize)
        let asked = onEntry(entry)
        wanted = kind == .file ? min(max(0, asked), 4096) : 0
        captured.removeAll(keepingCapacity: true)
        current = entry
        let contentPadding = Int((Int64(Self.block) - contentSize % Int64(Self.block)) % Int64(Self.block))
        if contentSize == 0 {
            finishMember()
            state = .header
        } else {
            state = .content(remaining: contentSize, padding: contentPadding)
        }
    }

    private func finishMember() {
        if let current, wanted > 0 { onContent(current, captured) }
        current = nil
        wanted = 0
    }

    private func finishExtended(_ kind: UInt8) throws(TarError) {
        switch kind {
        case UInt8(ascii: "L"): nextPath = Self.string(extendedBytes[...])
        case UInt8(ascii: "K"): nextLink = Self.string(extendedBytes[...])
        default: try readPAX()
        }
    }

    /// PAX records: `<length> <key>=<value>\n`, the length counting the whole record.
    private func readPAX() throws(TarError) {
        var offset = 0
        let bytes = extendedBytes
        while offset < bytes.count {
            guard let space = bytes[offset...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: bytes[offset..<space], as: UTF8.self)), length > 0, offset + length <= bytes.count,
                space + 1 < offset + length, bytes[offset + length - 1] == UInt8(ascii: "\n")
            else { throw TarError(description: "a PAX extended header is malformed") }
            let record = bytes[(space + 1)..<(offset + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[record.startIndex..<equals], as: UTF8.self)
                let value = String(decoding: record[(equals + 1)...], as: UTF8.self)
                switch key {
                case "path": nextPath = value
                case "linkpath": nextLink = value
                case "size":
                    guard let size = Int64(value), size >= 0, size < 1 << 50 else {
                        throw TarError(description: "a PAX size is not a number")
                    }
                    nextSize = size
                default: break
                }
            }
            offset += length
        }
    }

    /// A NUL-terminated header field.
    static func string(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A numeric header field: octal digits (spaces and NULs around them), or GNU's base-256
    /// (first byte's high bit set, big-endian). Nil when it is neither.
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            var value: Int64 = Int64(first & 0x3f)
            for byte in field.dropFirst() {
                guard value < 1 << 54 else { return nil }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var digits = 0
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value < 1 << 58 else { return nil }
                value = value * 8 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
            case 0, UInt8(ascii: " "):
                if digits > 0 { return value }
            default:
                return nil
            }
        }
        return digits > 0 ? value : 0
    }
}
