import CZlib
import CZstd
import Foundation

/// A tar stream written member by member (ustar headers, PAX for long paths), for test layers
/// with binaries, scripts, links and whiteouts.
public struct TarWriter: Sendable {
    public private(set) var data = Data()

    public init() {}

    /// A regular file (executable by default).
    public mutating func file(_ path: String, _ contents: Data, mode: Int = 0o755) {
        member(path, type: "0", size: Int64(contents.count), mode: mode)
        data.append(contents)
        data.append(Data(count: (512 - contents.count % 512) % 512))
    }

    public mutating func directory(_ path: String) {
        member(path, type: "5", size: 0, mode: 0o755)
    }

    public mutating func symbolicLink(_ path: String, to target: String) {
        member(path, type: "2", size: 0, mode: 0o777, link: target)
    }

    public mutating func hardLink(_ path: String, to target: String) {
        member(path, type: "1", size: 0, mode: 0o755, link: target)
    }

    /// Removes `path` of the layers below (`.wh.<name>`).
    public mutating func whiteout(_ path: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        file(directory + ".wh." + name, Data(), mode: 0o644)
    }

    /// Hides everything the layers below have in `directory` (`.wh..wh..opq`).
    public mutating func opaque(_ directory: String) {
        file(directory + "/.wh..wh..opq", Data(), mode: 0o644)
    }

    /// A header only, claiming `size` bytes of content that the caller appends (or never does).
    public mutating func header(_ path: String, size: Int64, mode: Int = 0o644) {
        member(path, type: "0", size: size, mode: mode)
    }

    /// The archive with its end marker.
    public var finished: Data { data + Data(count: 1024) }

    private mutating func member(_ path: String, type: Character, size: Int64, mode: Int, link: String = "") {
        var name = path
        while name.hasPrefix("/") { name.removeFirst() }
        if name.utf8.count > 100 {
            // A PAX header carries the long path; the ustar name is a stand-in.
            let record = " path=\(name)\n"
            var length = record.utf8.count + 1
            while "\(length)".utf8.count + record.utf8.count != length { length = "\(length)".utf8.count + record.utf8.count }
            let pax = Data("\(length)\(record)".utf8)
            data.append(Self.header(name: "PaxHeaders/x", type: "x", size: Int64(pax.count), mode: 0o644, link: ""))
            data.append(pax)
            data.append(Data(count: (512 - pax.count % 512) % 512))
            name = "long-" + String(name.suffix(80))
        }
        data.append(Self.header(name: name, type: type, size: size, mode: mode, link: link))
    }

    /// One ustar header block (owner root, checksum computed).
    static func header(name: String, type: Character, size: Int64, mode: Int, link: String, modificationTime: Int = 0) -> Data {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ string: String, at offset: Int, width: Int) {
            for (index, byte) in string.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int64, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        put(name, at: 0, width: 100)
        put(octal(Int64(mode), width: 8), at: 100, width: 7)
        put(octal(0, width: 8), at: 108, width: 7)
        put(octal(0, width: 8), at: 116, width: 7)
        put(octal(size, width: 12), at: 124, width: 11)
        put(octal(Int64(modificationTime), width: 12), at: 136, width: 11)
        put("        ", at: 148, width: 8)
        header[156] = type.asciiValue!
        put(link, at: 157, width: 100)
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        put("root", at: 265, width: 32)
        put("root", at: 297, width: 32)
        let checksum = header.reduce(0) { $0 + Int64($1) }
        put(octal(checksum, width: 7), at: 148, width: 6)
        header[154] = 0
        header[155] = UInt8(ascii: " ")
        return Data(header)
    }
}

/// Compression for test layers, through the same libraries Archway reads them with.
public enum LayerCompressor {
    /// A gzip stream of `data`.
    public static func gzip(_ data: Data) -> Data {
        gzip(prefix: data, zeros: 0)
    }

    /// A gzip stream of `prefix` followed by `zeros` zero bytes, compressed as it is produced:
    /// a decompression bomb of any size costs little memory to make.
    public static func gzip(prefix: Data, zeros: Int64) -> Data {
        var stream = z_stream()
        precondition(archway_deflate_init_gzip(&stream, 6) == Z_OK)
        defer { deflateEnd(&stream) }
        var output = Data()
        let zeroBlock = [UInt8](repeating: 0, count: 1 << 20)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        func run(_ input: UnsafeRawBufferPointer, flush: Int32) {
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            repeat {
                buffer.withUnsafeMutableBytes { out in
                    stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(out.count)
                    _ = deflate(&stream, flush)
                    output.append(contentsOf: out.prefix(out.count - Int(stream.avail_out)))
                }
            } while stream.avail_out == 0 || (flush == Z_FINISH && stream.avail_in > 0)
        }
        prefix.withUnsafeBytes { run($0, flush: Z_NO_FLUSH) }
        var left = zeros
        while left > 0 {
            let count = Int(min(left, Int64(zeroBlock.count)))
            zeroBlock.withUnsafeBytes { run(UnsafeRawBufferPointer(rebasing: $0[0..<count]), flush: Z_NO_FLUSH) }
            left -= Int64(count)
        }
        var finished = Int32(Z_OK)
        while finished != Z_STREAM_END {
            buffer.withUnsafeMutableBytes { out in
                stream.next_in = nil
                stream.avail_in = 0
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(out.count)
                finished = deflate(&stream, Z_FINISH)
                output.append(contentsOf: out.prefix(out.count - Int(stream.avail_out)))
            }
        }
        return output
    }

    /// A zstd frame of `data`.
    public static func zstd(_ data: Data) -> Data {
        let bound = ZSTD_compressBound(data.count)
        var output = Data(count: bound)
        let written = output.withUnsafeMutableBytes { out in
            data.withUnsafeBytes { input in ZSTD_compress(out.baseAddress, bound, input.baseAddress, input.count, 3) }
        }
        precondition(ZSTD_isError(written) == 0)
        return output.prefix(written)
    }
}

/// The start of an ELF executable for a machine: what a scan reads of a binary.
public enum ELFStub {
    /// x86-64.
    public static let x86: UInt16 = 62
    public static let aarch64: UInt16 = 183
    public static let arm: UInt16 = 40

    /// A 64-byte ELF header (`ET_EXEC`) and some code-like bytes after it.
    public static func binary(machine: UInt16, bits: Int = 64, littleEndian: Bool = true) -> Data {
        var header = [UInt8](repeating: 0, count: 64)
        header[0...3] = [0x7f, 0x45, 0x4c, 0x46]
        header[4] = bits == 64 ? 2 : 1
        header[5] = littleEndian ? 1 : 2
        header[6] = 1
        let type: UInt16 = 2
        let fields =
            littleEndian
            ? [UInt8(type & 0xff), UInt8(type >> 8), UInt8(machine & 0xff), UInt8(machine >> 8)]
            : [UInt8(type >> 8), UInt8(type & 0xff), UInt8(machine >> 8), UInt8(machine & 0xff)]
        header[16...19] = fields[0...3]
        header[20] = littleEndian ? 1 : 0
        header[23] = littleEndian ? 0 : 1
        return Data(header) + Data((0..<448).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
    }
}
