import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import NIOTLS
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// MARK: - Limits

/// What one client may hold of the server: connections, and how long a connection may sit
/// without a complete request or a TLS handshake.
public struct ConnectionLimits: Sendable, Hashable {
    /// Connections served at once, plain and TLS. At the limit a new connection takes the place
    /// of the one that has waited longest without a request in progress (no request yet, idle
    /// between requests, or a TLS handshake still pending); when every connection is busy, it is
    /// refused: `503` and closed on plain HTTP, closed on TLS.
    public var maxConnections: Int = 4096
    /// Time to receive a complete request head, and to wait for the next one on a keep-alive
    /// connection (plain HTTP/1 and TLS HTTP/1; HTTP/2 streams too).
    public var requestTimeout: TimeAmount = .seconds(30)
    /// TLS: time from accept to a completed handshake.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// TLS connections with no byte read and no write completed for this long are closed: an
    /// HTTP/2 client that ignores the idle GOAWAY, a response whose client stopped reading.
    public var inactivityTimeout: TimeAmount = .seconds(120)
    /// A streamed response (TLS, HTTP/2) whose client takes no chunk for this long is ended.
    public var writeTimeout: TimeAmount = .seconds(60)
    /// HTTP/2: streams a connection may have open at once.
    public var maxConcurrentStreams: Int = 16
    /// Back-off of accept() when the process is out of descriptors or memory.
    public var acceptBackoff: TimeAmount = .milliseconds(500)

    public init() {}

    /// Accepting stops (clients wait in the kernel's backlog) this far above ``maxConnections``:
    /// room for replacing and refusing connections.
    public var acceptCeiling: Int { maxConnections + 256 }

    /// Connections the kernel completes and queues for accept() (capped by
    /// `net.core.somaxconn`). A burst of clients (a cluster rescheduling, a fleet pulling one
    /// image) outruns accept() for a moment; beyond this queue Linux drops their SYNs and each
    /// one waits a second for its retransmit. 4096 is what Go's listeners use; nginx's 511 is
    /// sized for one worker of many.
    public static let listenBacklog = 4096
}

// MARK: - Counting

/// One connection as the limiter sees it: busy, or idle since an instant. Its event loop marks
/// it on every request without taking the limiter's lock; ``ConnectionLimiter/admit(_:)`` reads
/// it when a connection must make room.
final class ConnectionActivity: Sendable {
    private static let busy: Int64 = -1
    /// Uptime nanoseconds since the connection waits, or `busy`.
    private let idleSince: Atomic<Int64>

    init(idleSince: NIODeadline) {
        self.idleSince = Atomic(Int64(idleSince.uptimeNanoseconds))
    }

    /// nil while a request is in progress (or the connection is HTTP/2 after its handshake).
    var idle: NIODeadline? {
        let since = idleSince.load(ordering: .relaxed)
        return since == Self.busy ? nil : .uptimeNanoseconds(UInt64(since))
    }

    func markBusy() { idleSince.store(Self.busy, ordering: .relaxed) }
    func markIdle(since: NIODeadline = .now()) { idleSince.store(Int64(since.uptimeNanoseconds), ordering: .relaxed) }
}

/// The open connections, each idle (since when) or busy; replaces the longest-idle one when full.
public final class ConnectionLimiter: Sendable {
    public let limit: Int
    private let state = Mutex(State())
    /// Whether the accept-storm breaker was put on the listening channel.
    let breakerInstalled = Atomic<Bool>(false)

    private struct Entry {
        let channel: any Channel
        let activity: ConnectionActivity
        var replaced = false
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        /// Entries not being replaced.
        var live = 0
    }

    public init(limit: Int) {
        self.limit = limit
    }

    /// How many connections are open.
    public var current: Int { state.withLock { $0.entries.count } }

    /// Admits a new connection, closing the longest-idle one when at the limit; false when every
    /// connection is busy.
    func admit(_ channel: any Channel) -> Bool {
        let now = NIODeadline.now()
        let replaced: (any Channel)?? = state.withLock { state in
            var victim: (any Channel)?
            if state.live >= limit {
                // Only at the limit: one pass for the longest-idle connection.
                var oldest: (key: ObjectIdentifier, since: NIODeadline)?
                for (key, entry) in state.entries where !entry.replaced {
                    if let since = entry.activity.idle, oldest.map({ since < $0.since }) ?? true { oldest = (key, since) }
                }
                guard let oldest, let entry = state.entries[oldest.key] else { return .none }
                state.entries[oldest.key]?.replaced = true
                state.live -= 1
                victim = entry.channel
            }
            state.entries[ObjectIdentifier(channel)] = Entry(channel: channel, activity: ConnectionActivity(idleSince: now))
            state.live += 1
            return .some(victim)
        }
        guard let replaced else { return false }
        replaced?.close(promise: nil)
        return true
    }

    /// What a connection's handlers mark it with; nil for a connection not admitted.
    func activity(of channel: any Channel) -> ConnectionActivity? {
        state.withLock { $0.entries[ObjectIdentifier(channel)]?.activity }
    }

    /// The connection has a request in progress: it is not replaced.
    func markBusy(_ channel: any Channel) {
        activity(of: channel)?.markBusy()
    }

    /// The connection waits for its next request.
    func markIdle(_ channel: any Channel) {
        activity(of: channel)?.markIdle()
    }

    func remove(_ channel: any Channel) {
        state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: ObjectIdentifier(channel)), !entry.replaced else { return }
            state.live -= 1
        }
    }
}

// MARK: - Wrapper around any ServerChildChannel

/// What a guarded connection hands to `handle`: the inner value, or nothing when it was refused.
public struct GuardedChildValue<Inner: ServerChildChannelValue>: ServerChildChannelValue {
    let inner: Inner?
    public let channel: any Channel
}

/// Wraps a Hummingbird child channel (``ArchwayHTTP1Channel``, ``ArchwayTLSChannel``) with:
/// the connection limit (refusal is explicit), an optional inactivity watchdog in front of the
/// pipeline, and the accept-storm breaker on the listening channel.
public struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = GuardedChildValue<Base.Value>

    let base: Base
    let limiter: ConnectionLimiter
    let limits: ConnectionLimits
    /// Bytes written before closing a refused connection; nil: just close (TLS).
    let refusal: String?
    /// Put NIO's IdleStateHandler(allTimeout:) first in the pipeline (TLS only: on plain HTTP/1
    /// one sendfile region of a large blob completes only at its end, so a slow but moving
    /// download would look idle).
    let watchInactivity: Bool

    public init(base: Base, limiter: ConnectionLimiter, limits: ConnectionLimits, refusal: String?, watchInactivity: Bool) {
        self.base = base
        self.limiter = limiter
        self.limits = limits
        self.refusal = refusal
        self.watchInactivity = watchInactivity
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // Runs on the child's event loop, before the channel is registered (NIOPosix
        // Bootstrap.swift:741-746): handlers get channelActive later.
        AcceptStormBreaker.installOnce(on: channel.parent, limiter: limiter, backoff: limits.acceptBackoff, logger: logger)

        guard limiter.admit(channel) else {
            logger.notice("connection refused: every connection is busy", metadata: ["limit": "\(limiter.limit)"])
            do {
                try channel.pipeline.syncOperations.addHandler(RefuseConnectionHandler(response: refusal))
            } catch {
                channel.close(promise: nil)
            }
            return channel.eventLoop.makeSucceededFuture(Value(inner: nil, channel: channel))
        }
        let limiter = self.limiter
        channel.closeFuture.whenComplete { _ in limiter.remove(channel) }

        do {
            if watchInactivity {
                try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: limits.inactivityTimeout))
                try channel.pipeline.syncOperations.addHandler(CloseOnIdleHandler())
            }
        } catch {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
            .map { Value(inner: $0, channel: channel) }
            .flatMapError { error in
                // NIO does not close a child whose initializer failed (AsyncChannelHandler.swift
                // :245-249 just drops it): the descriptor would leak.
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(error)
            }
    }

    public func handle(value: Value, logger: Logger) async {
        guard let inner = value.inner else { return }
        await base.handle(value: inner, logger: logger)
    }
}

// MARK: - Handlers

/// The only handler of a refused connection: says why (plain HTTP) and closes.
final class RefuseConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let response: String?
    private var done = false

    init(response: String?) {
        self.response = response
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whatever the client sends is dropped.
    }

    private func refuse(context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        guard let response else {
            context.close(promise: nil)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: response)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

extension GuardedChildChannel {
    /// The refusal for plain HTTP/1.
    public static var http1Refusal: String {
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n"
    }
}

/// Closes the connection on `IdleStateHandler.IdleStateEvent.all` (NIOCore ChannelHandlers.swift:182).
final class CloseOnIdleHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Closes a TLS connection whose handshake has not completed in time. NIOSSL has no handshake
/// timeout of its own (only `TLSConfiguration.shutdownTimeout`).
///
/// Must sit right after `NIOSSLServerHandler`: the ALPN handler that follows consumes
/// `TLSUserEvent.handshakeCompleted` without forwarding it
/// (NIOTypedApplicationProtocolNegotiationHandler.swift:100-108).
final class HandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny

    private let timeout: TimeAmount
    private let limiter: ConnectionLimiter?
    private var timer: Scheduled<Void>?

    /// - Parameter limiter: told that the connection is busy once the handshake completed (it is
    ///   then no longer replaced by newcomers; its request and idle timeouts apply).
    init(timeout: TimeAmount, limiter: ConnectionLimiter?) {
        self.timeout = timeout
        self.limiter = limiter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            timer?.cancel()
            timer = nil
            limiter?.markBusy(context.channel)
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func start(context: ChannelHandlerContext) {
        guard timer == nil else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }
}

/// Listening-channel handler: stops the accept spin when the process is out of descriptors.
///
/// Why it is needed: the async `ServerBootstrap.bind` does add
/// `AcceptBackoffHandler(shouldForwardIOErrorCaught: false)` (NIOPosix Bootstrap.swift:726-729),
/// but it only delays the *next* `read()`. When the very first `accept()` of a readable event
/// fails, `readPending` stays true (SocketChannel.swift:354-380 clears it only on success), so
/// `readable0` neither unregisters the fd (BaseSocketChannel.swift:1184-1187) nor asks the
/// pipeline for a read; epoll is level-triggered (SelectorEpoll.swift:73) and reports the
/// listening socket again at once: a busy loop of `accept() = EMFILE`. Turning `autoRead`
/// off calls `pauseRead0()` → `unregisterForReadable()` (BaseSocketChannel.swift:695-708);
/// turning it back on re-arms with `read0()`.
///
/// Hummingbird's `serverChannelInitializer` has no hook for extra handlers (Server.swift:221-232),
/// so it is installed from the first child's setup through `channel.parent`.
final class AcceptStormBreaker: ChannelInboundHandler {
    typealias InboundIn = Any  // accepted Channels pass through untouched

    private let backoff: TimeAmount
    private let logger: Logger
    private var resume: Scheduled<Void>?

    init(backoff: TimeAmount, logger: Logger) {
        self.backoff = backoff
        self.logger = logger
    }

    static func installOnce(on parent: (any Channel)?, limiter: ConnectionLimiter, backoff: TimeAmount, logger: Logger) {
        guard let parent, !limiter.breakerInstalled.load(ordering: .relaxed) else { return }
        guard limiter.breakerInstalled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        parent.eventLoop.execute {
            try? parent.pipeline.syncOperations.addHandler(AcceptStormBreaker(backoff: backoff, logger: logger), position: .first)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError, Self.isResourceExhaustion(error), resume == nil,
            let options = context.channel.syncOptions
        {
            logger.warning("accept failed, pausing", metadata: ["error": "\(error)", "for": "\(backoff)"])
            try? options.setOption(ChannelOptions.autoRead, value: false)
            resume = context.eventLoop.assumeIsolated().scheduleTask(in: backoff) {
                self.resume = nil
                try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            }
        }
        // AcceptBackoffHandler (later in the pipeline) swallows IOErrors, so they never reach
        // the NIOAsyncChannel handler that would end the server's accept stream.
        context.fireErrorCaught(error)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }

    private static func isResourceExhaustion(_ error: IOError) -> Bool {
        switch error.errnoCode {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM: return true
        default: return false
        }
    }
}
