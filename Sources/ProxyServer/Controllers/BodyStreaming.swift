import Foundation
import Hummingbird
import NIOCore
import Synchronization

extension RegistryController {
    /// Chunks of streamed bodies: what a response holds per step (the chunk in hand and the one
    /// the channel has not sent yet). A response gets ``StreamingBudget/largeChunkSize`` chunks
    /// instead while the process-wide allowance for them has room.
    static let streamChunkSize = 128 << 10

    /// Copies a body to the client with bounded memory: at most the chunk in hand plus the one
    /// the channel has not yet emitted, per response.
    ///
    /// After each chunk the writer waits for a no-op on the channel's event loop: by then the
    /// loop has run the write and updated the writer's writability, so the next `write` suspends
    /// while the client is not reading (flow-control window closed, socket full). A chunk the
    /// connection has not taken within `stallTimeout` ends the response by closing the channel
    /// (HTTP/2: RST_STREAM for that stream; HTTP/1: the connection); with 128 KiB chunks and the
    /// default 60 s that is a floor of about 2 KiB/s (17 KiB/s for a response with 1 MiB chunks).
    static func stream(
        _ body: some AsyncSequence<ByteBuffer, any Error>, to writer: inout any ResponseBodyWriter, channel: any Channel,
        stallTimeout: TimeAmount, exchange: Exchange
    ) async throws {
        let eventLoop = channel.eventLoop
        for try await chunk in body {
            // If the chunk cannot be handed over in time, close the channel: the pending write
            // then fails (AsyncChannelHandler.swift:129-146 finishes the writer with
            // ioOnClosedChannel) and this throws out.
            let watchdog = eventLoop.scheduleTask(in: stallTimeout) {
                channel.close(promise: nil)
            }
            defer { watchdog.cancel() }
            try await writer.write(chunk)
            try await eventLoop.submit {}.get()
            exchange.add(chunk.readableBytes)
        }
    }
}

/// Bytes in memory as the chunks ``RegistryController/stream(_:to:channel:stallTimeout:exchange:)``
/// writes, each copied out only when its turn comes (the bytes themselves stay shared).
struct ByteChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error
    let bytes: Data
    let size: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let bytes: Data
        let size: Int
        var offset: Int

        mutating func next() async throws -> ByteBuffer? {
            guard offset < bytes.count else { return nil }
            let start = bytes.index(bytes.startIndex, offsetBy: offset)
            let end = bytes.index(start, offsetBy: Swift.min(size, bytes.count - offset))
            offset += end - start
            return ByteBuffer(bytes: bytes[start..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes, size: size, offset: 0) }
}

/// Bounds, process-wide, how many responses stream bodies through Archway's memory at once
/// (sendfile responses are not counted: the kernel holds their bytes). With the per-response
/// bound above this bounds the total: measured at about 0.5 MiB a response with its HTTP/2 and
/// TLS buffers, 256 MiB at the default 512.
///
/// Each step of a streamed body costs a few thread hops (the file read, the event loop, the
/// check of the writer's writability): with 128 KiB chunks those hops, not TLS, were most of a
/// warm blob's CPU over TLS and HTTP/2. So a response also takes 1 MiB chunks when the
/// allowance for them (`largeChunkAllowance`, 64 MiB by default: about 36 responses) has room
/// for its two chunks; the others keep 128 KiB. Memory stays bounded: 512 x 0.5 MiB plus the
/// allowance.
public final class StreamingBudget: Sendable {
    public let limit: Int
    public let largeChunkAllowance: Int
    private let inUse = Atomic<Int>(0)
    private let largeInUse = Atomic<Int>(0)

    public static let largeChunkSize = 1 << 20
    /// What a response with large chunks holds beyond one with the usual chunks.
    static let largeChunkCost = 2 * (largeChunkSize - RegistryController.streamChunkSize)

    public init(limit: Int, largeChunkAllowance: Int = 64 << 20) {
        self.limit = limit
        self.largeChunkAllowance = largeChunkAllowance
    }

    /// A permit that bounds nothing, when there is no budget.
    static let unlimited = Permit(budget: nil, chunkSize: RegistryController.streamChunkSize)

    /// A permit, or nil when the budget is spent (answer 503 + Retry-After). The permit is given
    /// back when the last reference goes — also when Hummingbird never runs the body closure.
    public func acquire() -> Permit? {
        if inUse.add(1, ordering: .relaxed).newValue > limit {
            inUse.subtract(1, ordering: .relaxed)
            return nil
        }
        if largeInUse.add(Self.largeChunkCost, ordering: .relaxed).newValue <= largeChunkAllowance {
            return Permit(budget: self, chunkSize: Self.largeChunkSize)
        }
        largeInUse.subtract(Self.largeChunkCost, ordering: .relaxed)
        return Permit(budget: self, chunkSize: RegistryController.streamChunkSize)
    }

    fileprivate func release(chunkSize: Int) {
        inUse.subtract(1, ordering: .relaxed)
        if chunkSize == Self.largeChunkSize { largeInUse.subtract(Self.largeChunkCost, ordering: .relaxed) }
    }

    public final class Permit: Sendable {
        private let budget: StreamingBudget?
        /// The chunks this response streams in.
        public let chunkSize: Int
        fileprivate init(budget: StreamingBudget?, chunkSize: Int) {
            self.budget = budget
            self.chunkSize = chunkSize
        }
        deinit { budget?.release(chunkSize: chunkSize) }
    }
}
