import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// An HTTP/2 connection behind TLS (the TLS listener's, and the proxy listener's intercepted
/// ones), set up so that a warm manifest costs one frame handler call, not a stream channel
/// and a task:
///
///     TLS ─ TLSRecordPacker ─ HTTP2FrameFloodGuard ─ NIOHTTP2Handler (frames down the pipeline)
///       ─ NIOHTTP2ServerConnectionManagementHandler (idle, maximum age, graceful close)
///       ─ HalfClosedHTTP2Connection (the client closed its side: close)
///       ─ WarmHTTP2Handler (answers warm manifest HEADERS on the connection)
///       ─ HTTP2StreamMultiplexer ─ each other stream: HTTP2FramePayloadToHTTPServerCodec
///           ─ HTTPConnectionStateHandler (the request timeout) ─ NIOAsyncChannel
///           → a task in `handle` running the HTTP/1.1 channel's responder on it
///
/// Hummingbird's `HTTP2Channel` makes the stream channel and the task for every stream before
/// anything sees the request (two thirds of the CPU of a warm answer under h2load); here the
/// multiplexer only sees the streams the warm path hands on.
struct ArchwayHTTP2Channel: Sendable {
    struct Value: Sendable {
        /// The connection's streams that take the full path, ended when the connection closes.
        let streams: AsyncStream<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>>
        let channel: any Channel
    }

    /// Runs each stream's request (`handleHTTP`: one request, then the stream ends).
    let http1: ArchwayHTTP1Channel
    let limits: ConnectionLimits
    let warmPath: WarmManifestPath?

    /// The connection-level timers, as the HTTP/2 listener had them under Hummingbird: idle = no
    /// open stream for a minute; a connection lives an hour; a graceful close waits 10 s for
    /// open streams after its second GOAWAY.
    static let management = NIOHTTP2ServerConnectionManagementHandler.Configuration(
        maxIdleTime: .seconds(60), maxAge: .hours(1), maxGraceTime: .seconds(10), keepalive: nil)

    /// The SETTINGS Archway opens with: NIOHTTP2's, with Archway's stream limit.
    static func settings(maxConcurrentStreams: Int) -> HTTP2Settings {
        nioDefaultSettings.filter { $0.parameter != .maxConcurrentStreams } + [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams)
        ]
    }

    /// Sets up the connection's pipeline after its TLS handlers. Must run on the event loop.
    /// `upstream`: the upstream an intercepted connection is bound to.
    func setup(channel: any Channel, upstream: String?, logger: Logger) throws -> Value {
        let pipeline = channel.pipeline.syncOperations
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = Self.settings(maxConcurrentStreams: limits.maxConcurrentStreams)
        try pipeline.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: connection))
        try pipeline.addHandler(NIOHTTP2ServerConnectionManagementHandler(eventLoop: channel.eventLoop, configuration: Self.management))
        try pipeline.addHandler(HalfClosedHTTP2Connection())
        if let warmPath {
            try pipeline.addHandler(WarmHTTP2Handler(path: warmPath, upstream: upstream))
        }
        let (streams, continuation) = AsyncStream.makeStream(of: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>.self)
        let requestTimeout = limits.requestTimeout
        try pipeline.addHandler(
            HTTP2StreamMultiplexer(mode: .server, channel: channel) { stream in
                stream.eventLoop.makeCompletedFuture {
                    let handlers = stream.pipeline.syncOperations
                    try handlers.addHandler(HTTP2FramePayloadToHTTPServerCodec())
                    try handlers.addHandler(HTTPConnectionStateHandler(idleTimeout: Duration(requestTimeout), logger: logger))
                    continuation.yield(try NIOAsyncChannel(wrappingChannelSynchronously: stream))
                }
            })
        channel.closeFuture.whenComplete { _ in continuation.finish() }
        return Value(streams: streams, channel: channel)
    }

    /// Answers the full path's streams, each in its own task, until the connection closes and
    /// they have all ended.
    func handle(value: Value, logger: Logger) async {
        await withDiscardingTaskGroup { group in
            for await stream in value.streams {
                group.addTask { await http1.handleHTTP(asyncChannel: stream, logger: logger) }
            }
        }
    }
}

/// Closes an HTTP/2 connection whose client has closed its side (the server's channels allow
/// half-closure, for HTTP/1.1). NIOHTTP2's connection manager would leave it open until idle.
final class HalfClosedHTTP2Connection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
