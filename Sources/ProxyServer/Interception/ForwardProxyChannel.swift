import CoreMetrics
import HummingbirdCore
import HummingbirdHTTP2
import InterceptionCA
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Who is on the other side of an intercepted connection: the upstream name the client
/// CONNECTed to (the only upstream its requests may reach, whatever their paths or `Host`
/// fields say) and the user the proxy authenticated, if any. Set for the connection's task,
/// so a client can never set it.
public struct InterceptedSession: Sendable {
    /// The host the client CONNECTed to (or named in absolute form).
    public let host: String
    /// The configured upstream name its requests go to (`host`, or `host:port` when that is
    /// how the upstream is named).
    public let upstream: String
    public let user: String?
    /// Absolute-form plain HTTP: each request names its host, which must be this one.
    public let absoluteForm: Bool

    @TaskLocal public static var current: InterceptedSession?
}

/// The proxy listener (`proxy.listen`): reads one request head, decides through a
/// ``ProxyGate``, and then either terminates TLS with a leaf of the ``InterceptionAuthority``
/// and hands the connection to the same HTTP/1.1 and HTTP/2 channels as the mirror's TLS
/// listener, serves absolute-form plain HTTP, tunnels bytes to an admitted host, or refuses
/// with a status and a reason. Nothing is dialled before the decision.
public struct ForwardProxyChannel: HTTPChannelHandler {
    public struct Value: ServerChildChannelValue {
        let outcome: EventLoopFuture<Outcome>
        public let channel: any Channel
    }

    enum Outcome: Sendable {
        case intercepted(
            EventLoopFuture<NIONegotiatedHTTPVersion<ArchwayHTTP1Channel.Value, ArchwayHTTP2Channel.Value>>, InterceptedSession)
        case forwarded(ArchwayHTTP1Channel.Value, InterceptedSession)
        /// Refused or tunnelled: the channel runs by itself until it closes.
        case detached
    }

    /// What the listener needs besides the responder.
    public struct Settings: Sendable {
        public var gate: ProxyGate
        public var authority: InterceptionAuthority
        /// When set, a CONNECT needs a valid `Proxy-Authorization` (407 otherwise).
        public var authentication: ClientAuthentication?
        /// Ports Archway listens on: a tunnel never leads back to them.
        public var ownPorts: Set<Int>
        public var limits: ConnectionLimits
        public var connectTimeout: TimeAmount
        /// Warm manifests answered on the event loop inside intercepted connections.
        public var warmPath: WarmManifestPath?

        public init(
            gate: ProxyGate, authority: InterceptionAuthority, authentication: ClientAuthentication?, ownPorts: Set<Int>,
            limits: ConnectionLimits, connectTimeout: TimeAmount
        ) {
            self.gate = gate
            self.authority = authority
            self.authentication = authentication
            self.ownPorts = ownPorts
            self.limits = limits
            self.connectTimeout = connectTimeout
        }
    }

    let settings: Settings
    let limiter: ConnectionLimiter?
    let http1: ArchwayHTTP1Channel
    let http2: ArchwayHTTP2Channel
    public var responder: Responder { http1.responder }

    public init(settings: Settings, limiter: ConnectionLimiter?, responder: @escaping HTTPChannelHandler.Responder) {
        self.settings = settings
        self.limiter = limiter
        (self.http1, self.http2) = ArchwayTLSChannel.channels(responder: responder, limits: settings.limits, warmPath: settings.warmPath)
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let promise = channel.eventLoop.makePromise(of: Outcome.self)
        do {
            try channel.pipeline.syncOperations.addHandler(ProxyHeadHandler(proxy: self, outcome: promise, logger: logger))
        } catch {
            promise.fail(error)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return channel.eventLoop.makeSucceededFuture(Value(outcome: promise.futureResult, channel: channel))
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.outcome.get() {
            case .intercepted(let negotiated, let session):
                try await InterceptedSession.$current.withValue(session) {
                    switch try await negotiated.get() {
                    case .http1_1(let connection): await http1.handle(value: connection, logger: logger)
                    case .http2(let connection): await http2.handle(value: connection, logger: logger)
                    }
                }
            case .forwarded(let connection, let session):
                await InterceptedSession.$current.withValue(session) { await http1.handle(value: connection, logger: logger) }
            case .detached:
                let channel = value.channel
                try await withGracefulShutdownHandler {
                    try await channel.closeFuture.get()
                } onGracefulShutdown: {
                    channel.close(promise: nil)
                }
            }
        } catch {
            logger.debug("proxy connection ended: \(error)")
            try? await value.channel.close()
        }
    }

    /// Terminates TLS for `host` and sets up HTTP/2 or HTTP/1.1 by ALPN behind it. A
    /// ClientHello for another name than `host` closes the connection.
    func intercept(_ channel: any Channel, host: String, upstream: String, logger: Logger) throws -> EventLoopFuture<
        EventLoopFuture<NIONegotiatedHTTPVersion<ArchwayHTTP1Channel.Value, ArchwayHTTP2Channel.Value>>
    > {
        let context = try settings.authority.context(for: host)
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(
            ByteToMessageHandler(
                SNIHandler { result in
                    if case .hostname(let name) = result, name.lowercased() != host {
                        logger.notice("proxy: TLS name differs from the CONNECT", metadata: ["connect": "\(host)", "sni": "\(name)"])
                        return channel.close().flatMap { channel.eventLoop.makeFailedFuture(ProxyRefusal.nameMismatch) }
                    }
                    return channel.eventLoop.makeSucceededVoidFuture()
                }))
        try pipeline.addHandler(NIOSSLServerHandler(context: context))
        try pipeline.addHandler(HandshakeTimeoutHandler(timeout: settings.limits.handshakeTimeout, limiter: limiter))
        return ArchwayTLSChannel.negotiate(
            on: channel, http1: http1, http2: http2, frameGuard: .init(), upstream: upstream, logger: logger)
    }
}

enum ProxyRefusal: Error {
    case nameMismatch
}

/// Reads the first request head on a proxy connection (bounded in size and time), asks the
/// gate, and carries out the decision.
final class ProxyHeadHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let proxy: ForwardProxyChannel
    private let outcome: EventLoopPromise<ForwardProxyChannel.Outcome>
    private let logger: Logger
    private var buffered: ByteBuffer?
    private var deciding = false
    /// The head's length in `buffered`, once it is complete.
    private var headLength = 0
    private var timer: Scheduled<Void>?
    /// Name resolution blocks: it has two threads of its own, so slow DNS for tunnelled hosts
    /// never holds up the threads that read blobs from disk.
    static let resolvers: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()
    /// Bytes a client may send after its head before the decision (a pipelined ClientHello).
    static let earlyBytesLimit = 64 * 1024

    init(proxy: ForwardProxyChannel, outcome: EventLoopPromise<ForwardProxyChannel.Outcome>, logger: Logger) {
        self.proxy = proxy
        self.outcome = outcome
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        outcome.succeed(.detached)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: proxy.settings.limits.requestTimeout) {
            let (handler, context) = loopBound.value
            guard !handler.deciding else { return }
            handler.refuse(context: context, status: 408, reason: "no complete request in time", head: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        guard !deciding else {
            if buffered!.readableBytes > Self.earlyBytesLimit { context.close(promise: nil) }
            return
        }
        let parsed: (head: ProxyRequestHead, length: Int)?
        do {
            parsed = try ProxyRequestHead.parse(buffered!.readableBytesView)
        } catch {
            refuse(context: context, status: error.status, reason: error.description, head: nil)
            return
        }
        guard let (head, length) = parsed else { return }
        deciding = true
        headLength = length
        timer?.cancel()
        let decision = proxy.settings.gate.decide(head)
        // With proxy authentication, credentials come first, whatever the target.
        if let authentication = proxy.settings.authentication {
            authenticateThenCarryOut(decision, head: head, authentication: authentication, context: context)
        } else {
            carryOut(decision, head: head, user: nil, context: context)
        }
    }

    private func authenticateThenCarryOut(
        _ decision: ProxyGate.Decision, head: ProxyRequestHead, authentication: ClientAuthentication, context: ChannelHandlerContext
    ) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let address = context.remoteAddress?.ipAddress
        let eventLoop = context.eventLoop
        Task {
            let result = await authentication.authenticate(head.fields["proxy-authorization"], from: address)
            eventLoop.execute {
                let (handler, context) = loopBound.value
                // The client may have left while its password was checked: nothing to do then.
                guard context.channel.isActive else { return }
                switch result {
                case .user(let name): handler.carryOut(decision, head: head, user: name, context: context)
                case .throttled:
                    handler.refuse(context: context, status: 429, reason: "too many failed attempts from this address", head: head)
                case .anonymous, .invalid:
                    handler.refuse(context: context, status: 407, reason: "this proxy needs credentials (Proxy-Authorization)", head: head)
                }
            }
        }
    }

    private func carryOut(_ decision: ProxyGate.Decision, head: ProxyRequestHead, user: String?, context: ChannelHandlerContext) {
        switch decision {
        case .refuse(let status, let reason):
            refuse(context: context, status: status, reason: reason, head: head)
        case .intercept(let host, let upstream):
            do {
                let negotiated = try proxy.intercept(context.channel, host: host, upstream: upstream, logger: logger)
                context.writeAndFlush(
                    wrapOutboundOut(context.channel.allocator.buffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
                log(head, context: context, status: 200, outcome: "intercept")
                handOver(context: context, skippingHead: true)
                outcome.succeed(
                    .intercepted(
                        negotiated.flatMap { $0 }, InterceptedSession(host: host, upstream: upstream, user: user, absoluteForm: false)))
            } catch {
                refuse(context: context, status: 502, reason: "cannot present a certificate for \(host): \(error)", head: head)
            }
        case .forward(let host, let upstream):
            let session = InterceptedSession(host: host, upstream: upstream, user: user, absoluteForm: true)
            let promise = outcome
            log(head, context: context, status: nil, outcome: "forward")
            // No warm path: an absolute-form request is answered by the full path, bound to its upstream.
            context.eventLoop.makeCompletedFuture { try proxy.http1.configure(context.channel, warmPath: nil, upstream: nil) }
                .whenComplete { result in
                    switch result {
                    case .success(let connection): promise.succeed(.forwarded(connection, session))
                    case .failure(let error): promise.fail(error)
                    }
                }
            // The whole head goes to the HTTP/1.1 channel: it is its first request.
            handOver(context: context, skippingHead: false)
        case .tunnel(let host, let port, let exact):
            tunnel(to: host, port: port, exact: exact, head: head, context: context)
        }
    }

    /// Passes what was read beyond the head (or all of it, the head included) on, and leaves the pipeline.
    private func handOver(context: ChannelHandlerContext, skippingHead: Bool) {
        if var rest = buffered {
            if skippingHead { rest.moveReaderIndex(forwardBy: headLength) }
            buffered = nil
            if rest.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(rest))
                context.fireChannelReadComplete()
            }
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func tunnel(to host: String, port: Int, exact: Bool, head: ProxyRequestHead, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let ownPorts = proxy.settings.ownPorts
        let connectTimeout = proxy.settings.connectTimeout
        Self.resolvers.runIfActive(eventLoop: eventLoop) {
            try SocketAddress.resolving(host, port: port)
        }.flatMap { addresses -> EventLoopFuture<any Channel> in
            // Every address is checked before any is dialled.
            if addresses.contains(where: { $0.isLoopback || $0.isUnspecified }) {
                if ownPorts.contains(port) {
                    return eventLoop.makeFailedFuture(TunnelRefusal(reason: "\(host):\(port) is this proxy's own listener"))
                }
                if !exact {
                    return eventLoop.makeFailedFuture(
                        TunnelRefusal(reason: "\(host) resolves to a loopback address; only an exact proxy.tunnel entry may lead there"))
                }
            }
            return Self.connect(to: addresses[...], timeout: connectTimeout, on: eventLoop)
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .failure(let refusal as TunnelRefusal):
                handler.refuse(context: context, status: refusal.status, reason: refusal.reason, head: head)
            case .failure(let error):
                handler.refuse(context: context, status: 502, reason: "cannot reach \(host):\(port): \(error)", head: head)
            case .success(let peer):
                guard context.channel.isActive else {
                    peer.close(promise: nil)
                    return
                }
                let (ours, theirs) = TunnelHandler.pair()
                do {
                    try peer.pipeline.syncOperations.addHandler(theirs)
                    try context.pipeline.syncOperations.addHandler(ours, position: .after(handler))
                } catch {
                    peer.close(promise: nil)
                    handler.refuse(context: context, status: 502, reason: "cannot set up the tunnel", head: head)
                    return
                }
                context.writeAndFlush(
                    handler.wrapOutboundOut(context.channel.allocator.buffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")),
                    promise: nil)
                handler.log(head, context: context, status: 200, outcome: "tunnel")
                handler.handOver(context: context, skippingHead: true)
                handler.outcome.succeed(.detached)
            }
        }
    }

    /// Connects to the first of `addresses` that answers, in order.
    private static func connect(to addresses: ArraySlice<SocketAddress>, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<any Channel>
    {
        guard let first = addresses.first else { return eventLoop.makeFailedFuture(TunnelRefusal(reason: "no address")) }
        return ClientBootstrap(group: eventLoop).connectTimeout(timeout).connect(to: first).flatMapError { error in
            addresses.count > 1 ? connect(to: addresses.dropFirst(), timeout: timeout, on: eventLoop) : eventLoop.makeFailedFuture(error)
        }
    }

    private func refuse(context: ChannelHandlerContext, status: Int, reason: String, head: ProxyRequestHead?) {
        let phrase = HTTPResponseStatus(statusCode: status).reasonPhrase
        var response = "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        if status == 407 { response += "Proxy-Authenticate: Basic realm=\"archway\"\r\n" }
        let body = reason + "\n"
        response += "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        log(head, context: context, status: status, outcome: "refused", reason: reason)
        buffered = nil
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: response)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        outcome.succeed(.detached)
    }

    private func log(_ head: ProxyRequestHead?, context: ChannelHandlerContext, status: Int?, outcome: String, reason: String? = nil) {
        var metadata: Logger.Metadata = [
            "method": "\(head?.method ?? "-")",
            "target": "\(head?.target ?? "-")",
            "outcome": "\(outcome)",
            "client": "\(context.remoteAddress?.ipAddress ?? "")",
        ]
        if let status { metadata["status"] = "\(status)" }
        if let reason { metadata["reason"] = "\(reason)" }
        logger.info("proxy", metadata: metadata)
        Counter(label: "archway_proxy_requests_total", dimensions: [("outcome", outcome)]).increment()
    }
}

/// Why a tunnel is not opened: refused by policy (403) or its host does not resolve (502).
struct TunnelRefusal: Error {
    let reason: String
    var status = 403
}

extension SocketAddress {
    /// Every TCP address of `host` (getaddrinfo: blocking, so off the event loop).
    static func resolving(_ host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw TunnelRefusal(reason: "\(host) does not resolve: \(String(cString: gai_strerror(status)))", status: 502)
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            if let address = current.pointee.ai_addr {
                switch current.pointee.ai_family {
                case AF_INET:
                    addresses.append(address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) })
                case AF_INET6:
                    addresses.append(
                        address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) })
                default: break
                }
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw TunnelRefusal(reason: "\(host) has no TCP address", status: 502) }
        return addresses
    }

    /// 127.0.0.0/8 or ::1 (or an IPv4-mapped loopback).
    var isLoopback: Bool {
        guard let ip = ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }

    var isUnspecified: Bool { ipAddress == "0.0.0.0" || ipAddress == "::" }
}

/// One side of a tunnel: what it reads, the other side writes; each side reads only while the
/// other can write, and when one side closes, so does the other.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: TunnelHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func pair() -> (TunnelHandler, TunnelHandler) {
        let first = TunnelHandler()
        let second = TunnelHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.forward(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flushForwarded()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    private func forward(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func flushForwarded() {
        context?.flush()
    }

    private func resumeReading() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }
}

extension HTTPServerBuilder {
    /// The proxy listener, within the connection limits.
    public static func forwardProxy(settings: ForwardProxyChannel.Settings, limiter: ConnectionLimiter) -> HTTPServerBuilder {
        .init { responder in
            GuardedChildChannel(
                base: ForwardProxyChannel(settings: settings, limiter: limiter, responder: responder),
                limiter: limiter,
                limits: settings.limits,
                refusal: GuardedChildChannel<ForwardProxyChannel>.http1Refusal,
                watchInactivity: true
            )
        }
    }
}
