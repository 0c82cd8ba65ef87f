import Cache
import CoreMetrics
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
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
/// pipelines have no handler, and the responder streams as before.
public struct SendfileHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    public typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    public let responder: HTTPChannelHandler.Responder

    public init(responder: @escaping HTTPChannelHandler.Responder) {
        self.responder = responder
    }

    /// Hummingbird's HTTP/1.1 pipeline with ``SendfileHandler`` between the HTTP/1 encoder and
    /// the HTTP types codec.
    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                withErrorHandling: false,
                withOutboundHeaderValidation: false
            )
            try channel.pipeline.syncOperations.addHandler(SendfileHandler())
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    public func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 that sends stored blobs with `sendfile`.
    public static var http1Sendfile: HTTPServerBuilder {
        .init { responder in SendfileHTTP1Channel(responder: responder) }
    }
}

/// A file region waiting for its response, and what must stay alive until it is sent.
final class SendfileJob: Sendable {
    private static let counter = Atomic<UInt64>(0)

    /// The value of the response head's marker, so a head finds exactly its own file.
    let id = SendfileJob.counter.add(1, ordering: .relaxed).newValue
    let handle: NIOFileHandle
    let start: Int64
    let end: Int64
    /// Holds the blob's lease (eviction keeps away) until the bytes are sent.
    let keepAlive: any Sendable

    init(handle: NIOFileHandle, start: Int64, end: Int64, keepAlive: any Sendable) {
        self.handle = handle
        self.start = start
        self.end = end
        self.keepAlive = keepAlive
    }

    var region: FileRegion { FileRegion(fileHandle: handle, readerIndex: Int(start), endIndex: Int(end)) }

    func close() {
        try? handle.close()
    }
}

/// Writes a job's file region into the response whose head carries ``marker``.
final class SendfileHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The head field that says "the body is the queued file"; it never leaves the process.
    static let marker = "Archway-Sendfile"
    static let markerField = HTTPField.Name(marker)!

    private var queued: [SendfileJob] = []
    private var current: SendfileJob?

    /// Queues the file for the next marked response on this connection.
    func enqueue(_ job: SendfileJob) {
        queued.append(job)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            guard let marker = head.headers.first(name: Self.marker) else {
                context.write(data, promise: promise)
                return
            }
            head.headers.remove(name: Self.marker)
            guard let index = queued.firstIndex(where: { String($0.id) == marker }) else {
                // A marked head without its file cannot be completed: the length is promised.
                promise?.fail(ChannelError.ioOnClosedChannel)
                context.close(promise: nil)
                return
            }
            let job = queued.remove(at: index)
            current = job
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            guard let job = current else {
                context.write(data, promise: promise)
                return
            }
            current = nil
            let sent = context.eventLoop.makePromise(of: Void.self)
            sent.futureResult.whenComplete { _ in job.close() }
            context.write(wrapOutboundOut(.body(.fileRegion(job.region))), promise: sent)
            context.write(data, promise: promise)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        current?.close()
        for job in queued { job.close() }
        current = nil
        queued.removeAll()
    }
}

extension RegistryResponder {
    /// Responses whose body the kernel sent.
    static let sendfileResponses = Counter(label: "archway_sendfile_responses_total")

    /// Hands a stored blob's bytes to the connection's ``SendfileHandler`` and returns the value
    /// of the head's marker; nil when the connection has no such handler (TLS, HTTP/2) or the
    /// content is not stored whole.
    static func queueSendfile(_ reader: BlobReader, on channel: any Channel) async -> UInt64? {
        guard let region = reader.duplicateStoredRegion() else { return nil }
        let job = SendfileJob(
            handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: region.descriptor),
            start: region.start,
            end: region.end,
            keepAlive: reader
        )
        do {
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: SendfileHandler.self).enqueue(job)
            }.get()
            return job.id
        } catch {
            job.close()
            return nil
        }
    }
}
