import Foundation
import NIOCore
import OCI
import Testing

struct DigestHasherTests {
    static let payload: [UInt8] = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    @Test func emptyHasherIsTheDigestOfNothing() {
        #expect(DigestHasher().finalize().description == DigestTests.empty)
    }

    @Test(arguments: [1, 7, 64, 4096, 65_537, 100_000])
    func chunksEqualOneShot(chunkSize: Int) {
        let expected = Digest.sha256(Self.payload)
        var fromArrays = DigestHasher()
        var fromBuffers = DigestHasher()
        var fromPointers = DigestHasher()
        for start in stride(from: 0, to: Self.payload.count, by: chunkSize) {
            let chunk = Self.payload[start..<min(start + chunkSize, Self.payload.count)]
            fromArrays.update(chunk)
            fromBuffers.update(ByteBuffer(bytes: chunk))
            chunk.withUnsafeBytes { fromPointers.update($0) }
        }
        #expect(fromArrays.finalize() == expected)
        #expect(fromBuffers.finalize() == expected)
        #expect(fromPointers.finalize() == expected)
    }

    @Test func byteBufferUpdateHashesOnlyReadableBytesAndDoesNotConsume() {
        var buffer = ByteBuffer(string: "xxabc")
        buffer.moveReaderIndex(forwardBy: 2)
        var hasher = DigestHasher()
        hasher.update(buffer)
        #expect(buffer.readableBytes == 3)
        #expect(hasher.finalize() == Digest.sha256(Data("abc".utf8)))
    }

    @Test func finalizeDoesNotEndTheHasher() {
        var hasher = DigestHasher()
        hasher.update(Data("hello ".utf8))
        #expect(hasher.finalize() == Digest.sha256(Data("hello ".utf8)))
        hasher.update(Data("world".utf8))
        #expect(hasher.finalize() == Digest.sha256(Data("hello world".utf8)))
    }
}
