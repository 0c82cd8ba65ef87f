import NIOCore

/// Packs what HTTP/2 writes into full TLS records. `NIOHTTP2Handler` writes each frame's
/// 9-byte header and its payload as separate buffers, and `NIOSSLHandler` seals every buffer
/// into records of its own: a 16 KiB DATA frame became two records (one of 9 bytes), and a
/// small answer (HEADERS, DATA header, DATA payload) three. Each record costs a seal here and
/// an open at the client, and the client is what limits an HTTP/2 download on loopback.
///
/// Sits between the TLS handler and the HTTP/2 handler. Writes are copied into one staging
/// buffer that leaves as soon as it holds a full record (16 KiB of plaintext), and on flush; a
/// write's promise completes with the buffer that carries its last byte. A whole record with
/// nothing staged leaves as a slice, uncopied. At most one record's worth of plaintext is held
/// per connection.
final class TLSRecordPacker: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The largest TLS record's plaintext (RFC 8446 5.1), and NIOSSL's largest single write.
    static let recordSize = 16_384

    private var staging: ByteBuffer?
    /// Promises of writes whose last byte is in `staging`.
    private var waiting: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = unwrapOutboundIn(data)
        guard buffer.readableBytes > 0 else {
            // An empty write orders a promise after what was written before it.
            if staging == nil { context.write(data, promise: promise) } else { wait(for: promise) }
            return
        }
        if staging == nil {
            // Whole records go out as they are, without a copy.
            while buffer.readableBytes >= Self.recordSize, let record = buffer.readSlice(length: Self.recordSize) {
                context.write(wrapOutboundOut(record), promise: buffer.readableBytes == 0 ? promise : nil)
            }
            guard buffer.readableBytes > 0 else { return }
            staging = context.channel.allocator.buffer(capacity: Self.recordSize)
        }
        while buffer.readableBytes > 0 {
            let room = Self.recordSize - staging!.readableBytes
            var part = buffer.readSlice(length: min(room, buffer.readableBytes))!
            staging!.writeBuffer(&part)
            if staging!.readableBytes == Self.recordSize {
                emit(context: context, finishing: buffer.readableBytes == 0 ? promise : nil)
                if buffer.readableBytes > 0 { staging = context.channel.allocator.buffer(capacity: Self.recordSize) }
            }
        }
        if staging != nil { wait(for: promise) }
    }

    func flush(context: ChannelHandlerContext) {
        emit(context: context, finishing: nil)
        context.flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Only when the channel goes: what was never flushed is dropped, as NIO would drop it.
        staging = nil
        waiting?.fail(ChannelError.ioOnClosedChannel)
        waiting = nil
    }

    /// Sends the staging buffer with the promises of the writes it completes.
    private func emit(context: ChannelHandlerContext, finishing promise: EventLoopPromise<Void>?) {
        wait(for: promise)
        guard let staging else { return }
        let promises = waiting
        self.staging = nil
        waiting = nil
        context.write(wrapOutboundOut(staging), promise: promises)
    }

    private func wait(for promise: EventLoopPromise<Void>?) {
        guard let promise else { return }
        if let waiting {
            waiting.futureResult.cascade(to: promise)
        } else {
            waiting = promise
        }
    }
}
