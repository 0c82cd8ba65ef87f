import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTP2
import NIOSSL

/// TLS with ALPN, as Hummingbird's `HTTP2UpgradeChannel` builds it from its public parts, with
/// what Archway adds: a handshake timeout right after TLS, full TLS records for HTTP/2
/// (``TLSRecordPacker``), the HTTP/2 control-frame guard before `NIOHTTP2Handler`, request and
/// idle timeouts, and Archway's own HTTP/2 connection (``ArchwayHTTP2Channel``: the stream
/// limit in its opening SETTINGS, warm manifests answered on the connection).
public struct ArchwayTLSChannel: HTTPChannelHandler {
    public struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<NIONegotiatedHTTPVersion<ArchwayHTTP1Channel.Value, ArchwayHTTP2Channel.Value>>
        public let channel: any Channel
    }

    private let sslContext: NIOSSLContext
    private let http1: ArchwayHTTP1Channel
    private let http2: ArchwayHTTP2Channel
    private let limits: ConnectionLimits
    private let limiter: ConnectionLimiter?
    private let frameGuard: HTTP2FrameFloodGuard.Configuration

    public var responder: Responder { http1.responder }

    public init(
        tlsConfiguration: TLSConfiguration,
        limits: ConnectionLimits,
        limiter: ConnectionLimiter?,
        frameGuard: HTTP2FrameFloodGuard.Configuration = .init(),
        warmPath: WarmManifestPath? = nil,
        responder: @escaping HTTPChannelHandler.Responder
    ) throws {
        var tlsConfiguration = tlsConfiguration
        tlsConfiguration.applicationProtocols = NIOHTTP2SupportedALPNProtocols
        self.sslContext = try NIOSSLContext(configuration: tlsConfiguration)
        self.limits = limits
        self.limiter = limiter
        self.frameGuard = frameGuard

        (self.http1, self.http2) = Self.channels(responder: responder, limits: limits, warmPath: warmPath)
    }

    /// The HTTP/1.1 and HTTP/2 channels behind TLS (this listener's, and the proxy listener's
    /// intercepted connections): see ``ArchwayHTTP1Channel`` and ``ArchwayHTTP2Channel``. A TLS
    /// connection is busy for the limiter once its handshake completed: the HTTP/1.1 channel
    /// does not report to it.
    static func channels(responder: @escaping HTTPChannelHandler.Responder, limits: ConnectionLimits, warmPath: WarmManifestPath?)
        -> (ArchwayHTTP1Channel, ArchwayHTTP2Channel)
    {
        let http1 = ArchwayHTTP1Channel(responder: responder, idleTimeout: limits.requestTimeout, warmPath: warmPath, secure: true)
        return (http1, ArchwayHTTP2Channel(http1: http1, limits: limits, warmPath: warmPath))
    }

    // Keep the inner future (handshake + ALPN) in the value, as Hummingbird does
    // (HTTP2UpgradeChannel.swift:232-239). NIOHTTP2's public `Channel.configureHTTP2AsyncSecureUpgrade`
    // (HTTP2PipelineHelpers.swift:676-679) returns EventLoopFuture<EventLoopFuture<NIONegotiatedHTTPVersion>>;
    // flattening it in `setup` would deadlock: the child is registered (and becomes active, so
    // the handshake can start) only after `setup`'s future completes (AsyncChannelHandler.swift:186-200).
    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            try channel.pipeline.syncOperations.addHandler(HandshakeTimeoutHandler(timeout: limits.handshakeTimeout, limiter: limiter))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return Self.negotiate(
            on: channel, http1: http1, http2: http2, frameGuard: frameGuard, logger: logger
        )
        .map { negotiated in Value(negotiated: negotiated, channel: channel) }
    }

    /// HTTP/2 or HTTP/1.1 by ALPN on a channel whose TLS handler is in place: the record packer
    /// and the frame guard before HTTP/2. `upstream`: the upstream an intercepted connection is
    /// bound to.
    static func negotiate(
        on channel: any Channel, http1: ArchwayHTTP1Channel, http2: ArchwayHTTP2Channel, frameGuard: HTTP2FrameFloodGuard.Configuration,
        upstream: String? = nil, logger: Logger
    ) -> EventLoopFuture<EventLoopFuture<NIONegotiatedHTTPVersion<ArchwayHTTP1Channel.Value, ArchwayHTTP2Channel.Value>>> {
        channel.configureHTTP2AsyncSecureUpgrade { channel in
            channel.eventLoop.makeCompletedFuture { try http1.configure(channel, warmPath: http1.warmPath, upstream: upstream) }
        } http2ConnectionInitializer: { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                try pipeline.addHandler(TLSRecordPacker(), position: .after(try pipeline.handler(type: NIOSSLServerHandler.self)))
                try pipeline.addHandler(HTTP2FrameFloodGuard(configuration: frameGuard, expectedSettingsAcks: 1, logger: logger))
                return try http2.setup(channel: channel, upstream: upstream, logger: logger)
            }
        }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http1_1(let connection):
                await http1.handle(value: connection, logger: logger)
            case .http2(let connection):
                await http2.handle(value: connection, logger: logger)
            }
        } catch {
            logger.debug("TLS/ALPN setup failed: \(error)")
        }
    }
}

extension HTTPServerBuilder {
    /// Plain HTTP/1.1 with sendfile, within the connection limits.
    public static func guardedHTTP1Sendfile(limiter: ConnectionLimiter, limits: ConnectionLimits, warmPath: WarmManifestPath? = nil)
        -> HTTPServerBuilder
    {
        .init { responder in
            GuardedChildChannel(
                base: ArchwayHTTP1Channel(responder: responder, idleTimeout: limits.requestTimeout, limiter: limiter, warmPath: warmPath),
                limiter: limiter,
                limits: limits,
                refusal: GuardedChildChannel<ArchwayHTTP1Channel>.http1Refusal,
                watchInactivity: false
            )
        }
    }

    /// TLS with ALPN (HTTP/2 or HTTP/1.1), within the connection limits.
    public static func guardedTLS(
        tlsConfiguration: TLSConfiguration, limiter: ConnectionLimiter, limits: ConnectionLimits, warmPath: WarmManifestPath? = nil
    ) -> HTTPServerBuilder {
        .init { responder in
            GuardedChildChannel(
                base: try ArchwayTLSChannel(
                    tlsConfiguration: tlsConfiguration, limits: limits, limiter: limiter, warmPath: warmPath, responder: responder),
                limiter: limiter,
                limits: limits,
                refusal: nil,
                watchInactivity: true
            )
        }
    }
}
