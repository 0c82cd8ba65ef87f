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

    func written(_ channel: EmbeddedChannel) throws -> [ByteBuffer] {
        var buffers: [ByteBuffer] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { buffers.append(buffer) }
        return buffers
    }

    @Test func frameHeadersAndPayloadsFillWholeRecords() throws {
        let channel = try channel()
        var sent = ByteBuffer()
        for index in 0..<3 {
            // A DATA frame as NIOHTTP2 writes it: a 9-byte header, then 16 KiB of payload.
            for part in [buffer(9, UInt8(index)), buffer(TLSRecordPacker.recordSize, UInt8(100 + index))] {
                var copy = part
                sent.writeBuffer(&copy)
                channel.write(part, promise: nil)
            }
        }
        channel.flush()
        let out = try written(channel)
        #expect(out.map(\.readableBytes) == [16_384, 16_384, 16_384, 27], "three full records, then the rest on flush")
        var received = ByteBuffer()
        for var part in out { received.writeBuffer(&part) }
        #expect(received == sent)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func bytesLeaveInTheOrderWrittenAndPromisesCompleteWithTheirLastByte() throws {
        let channel = try channel()
        var expected = ByteBuffer()
        let completed = Mutex<[Int]>([])
        let sizes = [9, 100, 9, 16_384, 9, 40_000, 3, 0, 5]
        for (index, size) in sizes.enumerated() {
            let part = buffer(size, UInt8(index))
            var copy = part
            expected.writeBuffer(&copy)
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { completed.withLock { $0.append(index) } }
            channel.write(part, promise: promise)
        }
        #expect(completed.withLock { $0.isEmpty })
        channel.flush()
        let out = try written(channel)
        #expect(out.dropLast().allSatisfy { $0.readableBytes == TLSRecordPacker.recordSize }, "full records, then the rest")
        #expect(completed.withLock { $0 } == Array(0..<sizes.count))
        var received = ByteBuffer()
        for var part in out { received.writeBuffer(&part) }
        #expect(received == expected)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aWholeRecordWithNothingStagedLeavesWithoutACopy() throws {
        let channel = try channel()
        let record = buffer(2 * TLSRecordPacker.recordSize, 7)
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.write(record, promise: promise)
        channel.flush()
        let out = try written(channel)
        #expect(out == [record.getSlice(at: 0, length: 16_384)!, record.getSlice(at: 16_384, length: 16_384)!])
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
        let base = body.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        for (index, record) in out.dropFirst().dropLast().enumerated() {
            let address = record.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(address == base + UInt(16_384 - 300 + index * 16_384))
        }
        var received = ByteBuffer()
        for var part in out { received.writeBuffer(&part) }
        var expected = head
        var rest = body
        expected.writeBuffer(&rest)
        #expect(received == expected)
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
