import Hummingbird
import NIOCore
import Synchronization

extension RegistryController {
    /// Chunks of streamed bodies: what a response holds per step (the chunk in hand and the one
    /// the channel has not sent yet).
    static let streamChunkSize = 128 << 10

    /// Copies a body to the client with bounded memory: at most the chunk in hand plus the one
    /// the channel has not yet emitted, per response.
    ///
    /// After each chunk the writer waits for a no-op on the channel's event loop: by then the
    /// loop has run the write and updated the writer's writability, so the next `write` suspends
    /// while the client is not reading (flow-control window closed, socket full). A chunk the
    /// connection has not taken within `stallTimeout` ends the response by closing the channel
    /// (HTTP/2: RST_STREAM for that stream; HTTP/1: the connection); with 128 KiB chunks and the
    /// default 60 s that is a floor of about 2 KiB/s.
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

/// Bounds, process-wide, how many responses stream bodies through Archway's memory at once
/// (sendfile responses are not counted: the kernel holds their bytes). With the per-response
/// bound above this bounds the total: measured at about 0.5 MiB a response with its HTTP/2 and
/// TLS buffers, 256 MiB at the default 512.
public final class StreamingBudget: Sendable {
    public let limit: Int
    private let inUse = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// A permit that bounds nothing, when there is no budget.
    static let unlimited = Permit(budget: nil)

    /// A permit, or nil when the budget is spent (answer 503 + Retry-After). The permit is given
    /// back when the last reference goes — also when Hummingbird never runs the body closure.
    public func acquire() -> Permit? {
        if inUse.add(1, ordering: .relaxed).newValue > limit {
            inUse.subtract(1, ordering: .relaxed)
            return nil
        }
        return Permit(budget: self)
    }

    fileprivate func release() {
        inUse.subtract(1, ordering: .relaxed)
    }

    public final class Permit: Sendable {
        private let budget: StreamingBudget?
        fileprivate init(budget: StreamingBudget?) { self.budget = budget }
        deinit { budget?.release() }
    }
}
