import Foundation

/// Minimal archive formats written in code, so that test images need no external tool and their
/// bytes (and so their digests) are the same on every run.
public enum Archives {
    /// A POSIX ustar archive holding one regular file: a 512-byte header, the content padded to a
    /// multiple of 512 bytes, and two zero blocks. `name` is stored without a leading `/`.
    public static func tar(fileNamed name: String, contents: Data, mode: Int = 0o644, modificationTime: Int = 0) -> Data {
        var storedName = name
        while storedName.hasPrefix("/") { storedName.removeFirst() }
        precondition(storedName.utf8.count <= 100, "tar name longer than 100 bytes")
        let header = TarWriter.header(
            name: storedName, type: "0", size: Int64(contents.count), mode: mode, link: "", modificationTime: modificationTime)
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
