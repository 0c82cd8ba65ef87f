import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// An HTTP/1.1 connection, plain or behind TLS (the TLS listener's, and the proxy listener's
/// intercepted and forwarded ones):
///
///     [TLS] ─ HTTPRequestDecoder / HTTPResponseEncoder (NIO's, with Archway's header limits)
///       ─ SendfileHandler (plain only: a stored blob goes from its file to the socket)
///       ─ HTTP1ConnectionHandler (request timeout, keep-alive, graceful close, the limiter's view)
///       ─ WarmManifestHandler (answers warm manifests on the connection)
///       ─ HTTP1ToHTTPServerCodec ─ NIOAsyncChannel → `handle`: Hummingbird's responder
///
/// Hummingbird's `HTTP1Channel` keeps the connection's state in a handler above the HTTP-types
/// codec, so every request a warm answer could take had to be converted to HTTPTypes first and
/// its answer back (with the state and activity handlers, a tenth of a warm answer's CPU); here
/// the connection's state is kept on NIO's own parts, below both paths.
public struct ArchwayHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    public typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    public let responder: HTTPChannelHandler.Responder
    /// Time to receive a complete request head, and to wait for the next one between requests.
    let idleTimeout: TimeAmount?
    /// Told when the connection has a request in progress and when it waits.
    let limiter: ConnectionLimiter?
    /// Warm manifests answered on the event loop; nil: every request takes the full path.
    let warmPath: WarmManifestPath?
    /// Behind TLS: no sendfile (the bytes are encrypted in userspace), and `https` requests.
    let secure: Bool

    public init(
        responder: @escaping HTTPChannelHandler.Responder, idleTimeout: TimeAmount? = .seconds(30), limiter: ConnectionLimiter? = nil,
        warmPath: WarmManifestPath? = nil, secure: Bool = false
    ) {
        self.responder = responder
        self.idleTimeout = idleTimeout
        self.limiter = limiter
        self.warmPath = warmPath
        self.secure = secure
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture { try configure(channel, warmPath: warmPath, upstream: nil) }
    }

    /// Sets up the pipeline after whatever is already there (TLS). Must run on the event loop.
    /// `warmPath`: this connection's (a forwarded proxy request has none); `upstream`: the
    /// upstream an intercepted connection is bound to.
    func configure(_ channel: any Channel, warmPath: WarmManifestPath?, upstream: String?) throws -> Value {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 80 * 1024
        limits.maxHeaderListSize = 80 * 1024
        limits.maxHeaderFieldCount = 1000
        let pipeline = channel.pipeline.syncOperations
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: false,
            withErrorHandling: false,
            withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits
        )
        let sendfile = secure ? nil : SendfileHandler()
        if let sendfile { try pipeline.addHandler(sendfile) }
        try pipeline.addHandler(HTTP1ConnectionHandler(idleTimeout: idleTimeout, limiter: limiter, sendfile: sendfile))
        if let warmPath { try pipeline.addHandler(WarmManifestHandler(path: warmPath, upstream: upstream)) }
        try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
        return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
    }

    public func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

/// What an HTTP/1.x connection is doing, for ``HTTP1ConnectionHandler``: requests read,
/// responses written, and which response is the last.
struct HTTP1ConnectionState {
    private(set) var requestsRead = 0
    private(set) var responsesStarted = 0
    private(set) var responsesEnded = 0
    /// The number of the request whose response is the connection's last; nil: keep alive.
    private(set) var lastRequest: Int?
    /// A request came after the last one: it and everything after it is dropped.
    private(set) var discarding = false
    /// The latest request was HTTP/1.0 (which keeps the connection only when both sides say so).
    private var http10 = false

    /// Requests read whose response has not ended.
    var inProgress: Int { requestsRead - responsesEnded }

    /// A request head: false when it comes after the last request (dropped, with the rest).
    mutating func readHead(version: HTTPVersion, keepAlive: Bool) -> Bool {
        if let lastRequest, requestsRead >= lastRequest { discarding = true }
        guard !discarding else { return false }
        requestsRead += 1
        http10 = version.major == 1 && version.minor == 0
        if !keepAlive { lastRequest = requestsRead }
        return true
    }

    /// What a response head must say about the connection.
    enum Persistence: Equatable {
        case unchanged
        /// `Connection: close`: the last response.
        case close
        /// `Connection: keep-alive`: to an HTTP/1.0 client that asked for it.
        case keepAlive
    }

    /// A response head (an informational 1xx one does not start the response).
    mutating func writeHead(informational: Bool) -> Persistence {
        guard !informational else { return .unchanged }
        responsesStarted += 1
        if let lastRequest, responsesStarted >= lastRequest { return .close }
        return http10 ? .keepAlive : .unchanged
    }

    enum AfterResponse: Equatable {
        /// More responses to come.
        case busy
        /// No request in progress: the connection waits for the next.
        case idle
        /// The last response: close once it has been written.
        case close
    }

    /// A response's end.
    mutating func writeEnd() -> AfterResponse {
        // An end without a request (a 400 for a head that did not parse) counts as no request.
        responsesEnded = min(responsesEnded + 1, requestsRead)
        if let lastRequest, responsesEnded >= lastRequest { return .close }
        return inProgress == 0 ? .idle : .busy
    }

    /// Graceful shutdown: true when the connection may close at once; otherwise the response to
    /// the last request already read becomes the last.
    mutating func quiesce() -> Bool {
        guard inProgress > 0 else { return true }
        lastRequest = min(lastRequest ?? requestsRead, requestsRead)
        return false
    }
}

/// The life of an HTTP/1.x connection, kept on NIO's HTTP/1 parts below the warm path and the
/// full path alike:
/// - the request timeout: a connection with no request in progress is closed `idleTimeout`
///   after it opened or its last response ended (a head that does not complete in time, a
///   keep-alive connection nobody uses);
/// - keep-alive: a request whose `Connection` has the `close` token (in any case, among other
///   tokens), or an HTTP/1.0 request without `keep-alive`, is the last: its response says
///   `Connection: close`, the connection closes once that response has been written, and
///   anything the client sent after it is dropped (RFC 9112, 9.6), and reading stops. An
///   HTTP/1.0 client that asked to keep the connection is told `Connection: keep-alive`;
/// - graceful shutdown (`ChannelShouldQuiesceEvent`): an idle connection closes at once, a busy
///   one after the responses to the requests already read, the last saying `Connection: close`;
/// - the connection limiter's view: busy from a request head until its response has left (a
///   download in progress is never the connection a newcomer replaces).
/// It reads the clock once per request: when a response leaves the connection idle.
///
/// A response's end passes here before its bytes have left: a blob's file follows it below
/// (``SendfileHandler``), and a slow client keeps bytes queued. So when the timeout comes due the
/// handler looks at what is still queued: while it shrinks (or a download is being followed)
/// the wait starts again; when it has not moved for a whole period the client stopped reading,
/// and the connection is closed (plain HTTP has no inactivity watchdog: a sendfile region reports
/// progress only at its end). The last response (`Connection: close`) is watched the same way
/// until it has been written.
final class HTTP1ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let idleTimeout: TimeAmount?
    private let limiter: ConnectionLimiter?
    /// Plain connections' zero-copy sender: whether a file is still leaving.
    private let sendfile: SendfileHandler?
    /// Bytes queued on the socket at the last check of the timer; nil: nothing was queued.
    private var lastQueued: Int?
    /// Graceful shutdown came while the last response was still leaving: close once it has.
    private var closeWhenSent = false
    /// Looked up once: marking it takes no lock.
    private var activity: ConnectionActivity?
    private var state = HTTP1ConnectionState()
    /// Since when the connection waits with no request in progress.
    private var idleSince = NIODeadline.now()
    private var timer: Scheduled<Void>?

    init(idleTimeout: TimeAmount?, limiter: ConnectionLimiter?, sendfile: SendfileHandler? = nil) {
        self.idleTimeout = idleTimeout
        self.limiter = limiter
        self.sendfile = sendfile
    }

    func handlerAdded(context: ChannelHandlerContext) {
        activity = limiter?.activity(of: context.channel)
        if context.channel.isActive { startWaiting(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        startWaiting(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard state.readHead(version: head.version, keepAlive: head.isKeepAlive) else { return }
            activity?.markBusy()
        case .body, .end:
            guard !state.discarding else { return }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            let informational = head.status.code < 200 && head.status != .switchingProtocols
            switch state.writeHead(informational: informational) {
            case .unchanged:
                context.write(data, promise: promise)
            case .close:
                head.headers.replaceOrAdd(name: "connection", value: "close")
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            case .keepAlive:
                head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            switch state.writeEnd() {
            case .busy:
                context.write(data, promise: promise)
            case .idle:
                context.write(data, promise: promise)
                startWaiting(context: context)
            case .close:
                // Closed once the response has left: a close right away would drop what the
                // socket has not taken yet.
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.cascade(to: promise)
                let channel = context.channel
                written.futureResult.whenComplete { _ in channel.close(promise: nil) }
                context.writeAndFlush(data, promise: written)
                // A client that stops reading would hold it forever: the timer watches it.
                startWaiting(context: context)
            }
        }
    }

    /// Once a request came after the last one, nothing more is read: the client cannot keep the
    /// decoder busy with requests that are dropped while the last response is written.
    func read(context: ChannelHandlerContext) {
        guard !state.discarding else { return }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard state.quiesce() else { return }
        if isSending(context) {
            closeWhenSent = true
            timer?.cancel()
            timer = nil
            schedule(at: context.eventLoop.now + Self.quiesceCheck, context: context)
        } else {
            context.close(promise: nil)
        }
    }

    /// How often a quiescing connection looks whether its last response has left.
    static let quiesceCheck = TimeAmount.seconds(1)

    /// Whether the connection still sends: bytes queued on the socket, or a file leaving.
    private func isSending(_ context: ChannelHandlerContext) -> Bool {
        queuedBytes(context) > 0 || sendfile?.isSending == true
    }

    private func queuedBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }

    /// No request in progress from now: the timeout runs. For the limiter the connection waits
    /// only once no file is leaving (the timer tells it later otherwise).
    private func startWaiting(context: ChannelHandlerContext) {
        idleSince = context.eventLoop.now
        if sendfile?.isSending != true { activity?.markIdle(since: idleSince) }
        guard let idleTimeout, timer == nil else { return }
        schedule(at: idleSince + idleTimeout, context: context)
    }

    /// One timer at a time: when it fires early (the connection was busy, or waited again
    /// since), it is set for the new deadline, so a request costs no timer of its own.
    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timeoutCameDue(context: context)
        }
    }

    private func timeoutCameDue(context: ChannelHandlerContext) {
        // Busy: the end of the response starts the next wait.
        guard state.inProgress == 0 else { return }
        let now = context.eventLoop.now
        let period = closeWhenSent ? Self.quiesceCheck : (idleTimeout ?? Self.quiesceCheck)
        let queued = queuedBytes(context)
        if queued > 0 || sendfile?.isSending == true {
            // Still sending: moving (or waiting for the upstream of a followed download, whose
            // own stall timeout ends that) → wait again; stuck for a whole period → the client
            // stopped reading.
            guard queued == 0 || queued != lastQueued else { return context.close(promise: nil) }
            lastQueued = queued
            schedule(at: now + period, context: context)
            return
        }
        if lastQueued != nil {
            // The last response has left since the previous look: the wait starts now.
            lastQueued = nil
            idleSince = now
            activity?.markIdle(since: now)
        }
        let due = idleSince + period
        if closeWhenSent || due <= now {
            context.close(promise: nil)
        } else {
            schedule(at: due, context: context)
        }
    }
}
