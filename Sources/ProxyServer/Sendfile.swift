import CoreMetrics
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Proxy
import Synchronization

/// Zero-copy responses for stored blobs on plain HTTP/1.1: the kernel moves the file's pages
/// to the socket (`sendfile`), and no byte passes through Archway's memory.
///
/// Hummingbird's response writer carries `ByteBuffer`s only, so the file travels beside the
/// response: the responder hands a ``SendfileJob`` to the connection's ``SendfileHandler``
/// before it returns the response, and marks the response head. The handler sits below
/// Hummingbird's HTTP types codec, where body parts may be file regions; it takes the job when
/// the marked head passes, and writes the region just before the response's end. One response
/// is written at a time per connection, so the job and the head meet in order.
///
/// Over TLS the bytes must be encrypted in userspace, and HTTP/2 has its own framing: those
/// pipelines have no handler, and the responder streams as before. The pipeline: see
/// ``ArchwayHTTP1Channel``.
/// A file waiting for its response, and the blob file that keeps it alive until it is sent.
final class SendfileJob: Sendable {
    private static let counter = Atomic<UInt64>(0)

    /// The value of the response head's marker, so a head finds exactly its own file.
    let id = SendfileJob.counter.add(1, ordering: .relaxed).newValue
    let handle: NIOFileHandle
    let start: Int64
    let end: Int64
    /// Holds the blob's lease (eviction keeps away) and, for content still downloading, says
    /// how far the file may be sent.
    let file: BlobFile
    /// Completed once, when the job ends: with the bytes the kernel sent, or why it stopped.
    let delivered: EventLoopPromise<Int64>
    private let ended = Atomic<Bool>(false)

    init(handle: NIOFileHandle, start: Int64, end: Int64, file: BlobFile, eventLoop: any EventLoop) {
        self.handle = handle
        self.start = start
        self.end = end
        self.file = file
        self.delivered = eventLoop.makePromise()
    }

    func region(_ range: Range<Int64>) -> FileRegion {
        FileRegion(fileHandle: handle, readerIndex: Int(range.lowerBound), endIndex: Int(range.upperBound))
    }

    /// Whether the job has ended (its file sent, or stopped).
    var isFinished: Bool { ended.load(ordering: .relaxed) }

    /// Closes the file and says how the job ended; only the first call counts.
    func finish(_ result: Result<Int64, any Error>) {
        guard ended.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        try? handle.close()
        delivered.completeWith(result)
    }
}

extension SendfileJob: SendfileTracked {
    var isComplete: Bool { file.isComplete }
}

/// Writes a job's file into the response whose head carries ``marker``, just before the
/// response's end.
///
/// Stored content goes in one region. Content still downloading is sent region by region as the
/// download makes it readable, each after the previous one left; meanwhile the response's end
/// and whatever follows it on the connection are held back, in order, within the bounds of
/// ``SendfileStateMachine``, which makes every decision here.
final class SendfileHandler: ChannelOutboundHandler, RemovableChannelHandler {
    // Everything here runs on the connection's event loop, the follow task's steps included.
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The head field that says "the body is the queued file"; it never leaves the process.
    static let marker = "Archway-Sendfile"
    static let markerField = HTTPField.Name(marker)!

    /// What the connection was asked to do while a download is followed.
    enum Held {
        case write(NIOAny, EventLoopPromise<Void>?)
        case flush
        case close(CloseMode, EventLoopPromise<Void>?)
    }

    /// More was pipelined behind a downloading blob than the connection may hold.
    struct HoldQueueFull: Error {}

    private var machine = SendfileStateMachine<SendfileJob, Held>()

    /// The last stored file handed to the socket; responses leave in order, so while it is
    /// not sent, nothing after it is either.
    private var lastSent: SendfileJob?

    /// A file is still leaving: a stored one handed to the socket, or a running download
    /// followed as it arrives. The connection's end of response has passed above already.
    var isSending: Bool { machine.isFollowing || lastSent?.isFinished == false }

    /// Queues the file for the next marked response on this connection.
    func enqueue(_ job: SendfileJob) {
        if !machine.enqueue(job) { job.finish(.failure(ChannelError.ioOnClosedChannel)) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let response = unwrapOutboundIn(data)
        let part: SendfileStateMachine<SendfileJob, Held>.Part =
            switch response {
            case .head(let head): .head(marker: head.headers.first(name: Self.marker))
            case .body(let body): .body(bytes: body.readableBytes)
            case .end: .end
            }
        switch machine.write(part, .write(data, promise)) {
        case .pass:
            context.write(data, promise: promise)
        case .passWithoutMarker:
            guard case .head(var head) = response else { return }
            head.headers.remove(name: Self.marker)
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .refuse:
            promise?.fail(ChannelError.ioOnClosedChannel)
            context.close(promise: nil)
        case .sendFile(let job):
            lastSent = job
            let sent = context.eventLoop.makePromise(of: Void.self)
            sent.futureResult.whenComplete { result in job.finish(result.map { job.end - job.start }) }
            context.write(wrapOutboundOut(.body(.fileRegion(job.region(job.start..<job.end)))), promise: sent)
            context.write(data, promise: promise)
        case .follow(let job):
            follow(job, context: context)
        case .hold:
            break
        case .overflow(let operations):
            Self.fail(operations, with: HoldQueueFull(), closing: context)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if case .pass = machine.flushOrClose(.flush) { context.flush() }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if case .pass = machine.flushOrClose(.close(mode, promise)) { context.close(mode: mode, promise: promise) }
    }

    /// Sends the readable part of a running download, waits for it to leave, and repeats.
    private func follow(_ job: SendfileJob, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        Task {
            do {
                var offset = job.start
                while offset < job.end {
                    let readable = min(try await job.file.readable(beyond: offset), job.end, offset + (1 << 20))
                    let range = offset..<readable
                    try await loop.flatSubmit { () -> EventLoopFuture<Void> in
                        let (handler, context) = bound.value
                        guard !handler.machine.isRemoved else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
                        let sent = loop.makePromise(of: Void.self)
                        context.writeAndFlush(handler.wrapOutboundOut(.body(.fileRegion(job.region(range)))), promise: sent)
                        return sent.futureResult
                    }.get()
                    offset = readable
                }
                loop.execute { bound.value.handler.followEnded(job, context: bound.value.context, error: nil) }
            } catch {
                loop.execute { bound.value.handler.followEnded(job, context: bound.value.context, error: error) }
            }
        }
    }

    /// Replays what was held (the response's end first), through this handler again, so a held
    /// response that follows another download holds the rest anew. When the download failed,
    /// the promised length cannot be met: the held writes fail and the connection closes.
    private func followEnded(_ job: SendfileJob, context: ChannelHandlerContext, error: (any Error)?) {
        job.finish(error.map { .failure($0) } ?? .success(job.end - job.start))
        switch machine.followEnded(job, failed: error != nil) {
        case .none:
            return
        case .replay(let operations):
            for operation in operations {
                switch operation {
                case .write(let data, let promise): write(context: context, data: data, promise: promise)
                case .flush: flush(context: context)
                case .close(let mode, let promise): close(context: context, mode: mode, promise: promise)
                }
            }
        case .failAndClose(let operations):
            Self.fail(operations, with: error ?? ChannelError.ioOnClosedChannel, closing: context)
        }
    }

    /// Fails the held writes and closes the connection; held closes complete with that close.
    private static func fail(_ operations: [Held], with error: any Error, closing context: ChannelHandlerContext) {
        let closed = context.eventLoop.makePromise(of: Void.self)
        for case .close(_, let promise?) in operations { closed.futureResult.cascade(to: promise) }
        for case .write(_, let promise?) in operations { promise.fail(error) }
        context.close(promise: closed)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        let (jobs, operations) = machine.removed()
        for job in jobs { job.finish(.failure(ChannelError.ioOnClosedChannel)) }
        for case .write(_, let promise?) in operations { promise.fail(ChannelError.ioOnClosedChannel) }
        for case .close(_, let promise?) in operations { promise.succeed() }
    }
}

extension SendfileHandler {
    /// Hands a blob's `length` bytes from the file's start, stored or downloading, to the
    /// connection's handler and returns the job, whose id the response head must carry; nil when
    /// the connection has no such handler (TLS, HTTP/2).
    static func queue(_ file: BlobFile, length: Int64, on channel: any Channel) async -> SendfileJob? {
        guard let descriptor = file.duplicateDescriptor() else { return nil }
        let job = SendfileJob(
            handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor),
            start: file.start,
            end: file.start + length,
            file: file,
            eventLoop: channel.eventLoop
        )
        do {
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: SendfileHandler.self).enqueue(job)
            }.get()
            return job
        } catch {
            job.finish(.failure(error))
            return nil
        }
    }
}
