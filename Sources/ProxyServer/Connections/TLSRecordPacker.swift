import NIOCore

/// Packs what HTTP/2 writes into full TLS records. `NIOSSLHandler` seals every buffer it is
/// given into records of its own, and `NIOHTTP2Handler` writes each frame's 9-byte header apart
/// from its payload: a 16 KiB DATA frame was two records (one of 9 bytes), a small answer
/// (HEADERS, DATA header, DATA payload) three. Each record costs a seal here and an open at the
/// client, and the client is what limits a download on loopback.
///
/// Sits right after the TLS handler. A write tops up the staged record; whole records of what
/// remains leave as slices, uncopied; the rest is staged, and leaves on flush. A write's
/// promise completes with the buffer that carries its last byte. At most one record's worth of
/// plaintext is held per connection. HTTP/2's 16 KiB frames are copied whole (each starts 9
/// bytes into a record). HTTP/1.1 over TLS does without it: its head and body are two records
/// for a small answer, and packing them (measured on warm manifests) cost more than it saved.
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
        if var staged = staging {
            // Top up the staged record.
            var part = buffer.readSlice(length: min(Self.recordSize - staged.readableBytes, buffer.readableBytes))!
            staging = nil
            staged.writeBuffer(&part)
            staging = staged
            guard staged.readableBytes == Self.recordSize else {
                wait(for: promise)
                return
            }
            emit(context: context, finishing: buffer.readableBytes == 0 ? promise : nil)
        }
        // Whole records go out as they are, without a copy; the rest is staged.
        while buffer.readableBytes >= Self.recordSize, let record = buffer.readSlice(length: Self.recordSize) {
            context.write(wrapOutboundOut(record), promise: buffer.readableBytes == 0 ? promise : nil)
        }
        guard buffer.readableBytes > 0 else { return }
        var staged = context.channel.allocator.buffer(capacity: Self.recordSize)
        staged.writeBuffer(&buffer)
        staging = staged
        wait(for: promise)
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
