import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import ProxyServer

/// What the HTTP handlers write leaves in full TLS records, in order, copied only where a record
/// joins two writes; every write's promise completes once the buffer carrying its last byte has
/// gone.
struct TLSRecordPackerTests {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(TLSRecordPacker())
        return channel
    }

    func buffer(_ count: Int, _ byte: UInt8) -> ByteBuffer {
        ByteBuffer(repeating: byte, count: count)
    }

    /// Where a buffer's readable bytes are in memory: equal for a slice of the same storage.
    func address(of buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }

    /// The bytes of `buffers`, one after the other.
    func joined(_ buffers: [ByteBuffer]) -> ByteBuffer {
        buffers.reduce(into: ByteBuffer()) { all, part in
            var part = part
            all.writeBuffer(&part)
        }
    }

    func written(_ channel: EmbeddedChannel) throws -> [ByteBuffer] {
        var buffers: [ByteBuffer] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { buffers.append(buffer) }
        return buffers
    }

    @Test func frameHeadersAndPayloadsFillWholeRecords() throws {
        let channel = try channel()
        // Three DATA frames as NIOHTTP2 writes them: a 9-byte header, then 16 KiB of payload.
        let sent = (0..<3).flatMap { index in [buffer(9, UInt8(index)), buffer(TLSRecordPacker.recordSize, UInt8(100 + index))] }
        for part in sent { channel.write(part, promise: nil) }
        channel.flush()
        let out = try written(channel)
        #expect(out.map(\.readableBytes) == [16_384, 16_384, 16_384, 27], "three full records, then the rest on flush")
        #expect(joined(out) == joined(sent))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func bytesLeaveInTheOrderWrittenAndPromisesCompleteWithTheirLastByte() throws {
        let channel = try channel()
        let completed = Mutex<[Int]>([])
        let sizes = [9, 100, 9, 16_384, 9, 40_000, 3, 0, 5]
        let parts = sizes.enumerated().map { index, size in buffer(size, UInt8(index)) }
        for (index, part) in parts.enumerated() {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { completed.withLock { $0.append(index) } }
            channel.write(part, promise: promise)
        }
        #expect(completed.withLock { $0.isEmpty })
        channel.flush()
        let out = try written(channel)
        #expect(out.dropLast().allSatisfy { $0.readableBytes == TLSRecordPacker.recordSize }, "full records, then the rest")
        #expect(completed.withLock { $0 } == Array(0..<sizes.count))
        #expect(joined(out) == joined(parts))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aWholeRecordWithNothingStagedLeavesWithoutACopy() throws {
        let channel = try channel()
        let record = buffer(2 * TLSRecordPacker.recordSize, 7)
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.write(record, promise: promise)
        channel.flush()
        let out = try written(channel)
        #expect(out.map(\.readableBytes) == [16_384, 16_384])
        let start = address(of: record)
        #expect(out.map(address(of:)) == [start, start + 16_384], "slices of the written buffer's storage")
        try promise.futureResult.wait()
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aLargeBodyAfterASmallHeadIsCopiedOnlyAtItsEdges() throws {
        let channel = try channel()
        let head = buffer(300, 1)
        let body = buffer(1 << 20, 2)
        channel.write(head, promise: nil)
        channel.write(body, promise: nil)
        channel.flush()
        let out = try written(channel)
        #expect(out.map(\.readableBytes) == [16_384] + Array(repeating: 16_384, count: 63) + [300])
        // The 63 records in between are slices of the body's own storage.
        let middle = out.dropFirst().dropLast().map(address(of:))
        let start = address(of: body) + UInt(16_384 - 300)
        let expected: [UInt] = (0..<63).map { start + UInt($0 * 16_384) }
        #expect(middle == expected)
        #expect(joined(out) == joined([head, body]))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func anEmptyWriteKeepsItsPlaceInLine() throws {
        let channel = try channel()
        let order = Mutex<[String]>([])
        let staged = channel.eventLoop.makePromise(of: Void.self)
        staged.futureResult.whenSuccess { order.withLock { $0.append("staged") } }
        let empty = channel.eventLoop.makePromise(of: Void.self)
        empty.futureResult.whenSuccess { order.withLock { $0.append("empty") } }
        channel.write(buffer(9, 1), promise: staged)
        channel.write(ByteBuffer(), promise: empty)
        #expect(order.withLock { $0.isEmpty }, "nothing has left yet")
        channel.flush()
        #expect(order.withLock { $0 } == ["staged", "empty"])
        #expect(try written(channel).map(\.readableBytes) == [9])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
