import Foundation

/// Minimal archive formats written in code, so that test images need no external tool and their
/// bytes (and so their digests) are the same on every run.
public enum Archives {
    /// A POSIX ustar archive holding one regular file: a 512-byte header, the content padded to a
    /// multiple of 512 bytes, and two zero blocks. `name` is stored without a leading `/`.
    public static func tar(fileNamed name: String, contents: Data, mode: Int = 0o644, modificationTime: Int = 0) -> Data {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ string: String, at offset: Int, width: Int) {
            let bytes = Array(string.utf8.prefix(width))
            for (index, byte) in bytes.enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, width: Int) -> String {
            // width - 1 digits, then NUL
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        var storedName = name
        while storedName.hasPrefix("/") { storedName.removeFirst() }
        precondition(storedName.utf8.count <= 100, "tar name longer than 100 bytes")
        put(storedName, at: 0, width: 100)
        put(octal(mode, width: 8), at: 100, width: 7)
        put(octal(0, width: 8), at: 108, width: 7)  // uid
        put(octal(0, width: 8), at: 116, width: 7)  // gid
        put(octal(contents.count, width: 12), at: 124, width: 11)
        put(octal(modificationTime, width: 12), at: 136, width: 11)
        put("        ", at: 148, width: 8)  // checksum is computed with spaces here
        header[156] = UInt8(ascii: "0")  // regular file
        put("ustar", at: 257, width: 6)  // "ustar\0"
        put("00", at: 263, width: 2)
        put("root", at: 265, width: 32)
        put("root", at: 297, width: 32)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(octal(checksum, width: 7), at: 148, width: 6)
        header[154] = 0
        header[155] = UInt8(ascii: " ")

        var archive = Data(header)
        archive.append(contents)
        let padding = (512 - contents.count % 512) % 512
        archive.append(Data(count: padding + 1024))
        return archive
    }

    /// A gzip member holding `data` in stored (uncompressed) deflate blocks, with no name and no
    /// time stamp, like `gzip -n`'s header. Any gzip reader accepts it.
    public static func gzip(_ data: Data) -> Data {
        var out = Data([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03])
        let bytes = [UInt8](data)
        var offset = 0
        repeat {
            let length = min(65535, bytes.count - offset)
            let final = offset + length == bytes.count
            out.append(final ? 0x01 : 0x00)
            out.append(UInt8(length & 0xff))
            out.append(UInt8(length >> 8))
            out.append(UInt8(~length & 0xff))
            out.append(UInt8((~length >> 8) & 0xff))
            out.append(contentsOf: bytes[offset..<(offset + length)])
            offset += length
        } while offset < bytes.count
        appendLittleEndian(crc32(bytes), to: &out)
        appendLittleEndian(UInt32(truncatingIfNeeded: bytes.count), to: &out)
        return out
    }

    private static func appendLittleEndian(_ value: UInt32, to data: inout Data) {
        for shift in stride(from: 0, to: 32, by: 8) { data.append(UInt8((value >> UInt32(shift)) & 0xff)) }
    }

    private static let crcTable: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 { value = (value & 1) != 0 ? (0xEDB8_8320 ^ (value >> 1)) : (value >> 1) }
        return value
    }

    /// CRC-32 (IEEE), as used by gzip.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xffff_ffff
    }
}
