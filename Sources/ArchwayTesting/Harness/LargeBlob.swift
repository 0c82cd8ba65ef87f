import Foundation

/// Writes `size` bytes of pseudo-random, incompressible data (xorshift64*, seeded by `seed`) to a
/// new file in `directory`, 1 MiB at a time, and returns the file. The same size and seed always
/// give the same bytes.
public func makeLargeBlobFile(size: Int64, seed: UInt64, in directory: URL) throws -> URL {
    let file = directory.appendingPathComponent("blob-\(size)-\(seed).bin")
    guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
        throw HarnessError("cannot create \(file.path)")
    }
    let handle = try FileHandle(forWritingTo: file)
    defer { try? handle.close() }
    var state = seed ^ 0x9E37_79B9_7F4A_7C15
    if state == 0 { state = 0x2545_F491_4F6C_DD1D }
    let chunkWords = (1 << 20) / 8
    var words = [UInt64](repeating: 0, count: chunkWords)
    var remaining = size
    while remaining > 0 {
        words.withUnsafeMutableBufferPointer { buffer in
            var x = state
            for index in 0..<buffer.count {
                x ^= x >> 12
                x ^= x << 25
                x ^= x >> 27
                buffer[index] = x &* 0x2545_F491_4F6C_DD1D
            }
            state = x
        }
        let count = Int(min(Int64(chunkWords * 8), remaining))
        try words.withUnsafeBytes { raw in
            try handle.write(
                contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: raw.baseAddress!), count: count, deallocator: .none))
        }
        remaining -= Int64(count)
    }
    return file
}
