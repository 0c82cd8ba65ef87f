/// Counts an HTTP/2 connection's control frames and answers a flood with GOAWAY
/// `ENHANCE_YOUR_CALM`.
///
/// swift-nio-http2 limits PING, SETTINGS, PRIORITY and RST_STREAM floods, but not WINDOW_UPDATE
/// (nor frames on closed streams, which it ignores): one connection sending WINDOW_UPDATE with
/// increment 1 kept a core busy. This handler sits between TLS and `NIOHTTP2Handler` and reads
/// only frame headers from the raw bytes (the 24-byte preface, then 9 bytes per frame, payloads
/// skipped without copying), forwarding every buffer unchanged. Each control frame costs a token
/// from a per-connection bucket (1000, refilled at 100 per second and by one per 4 KiB sent:
/// a real client's WINDOW_UPDATEs follow the data it receives). It also requires the client to
/// acknowledge the server's SETTINGS in time (RFC 9113 SETTINGS_TIMEOUT).
import Logging
import NIOCore
import NIOHTTP2

public final class HTTP2FrameFloodGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = IOData  // NIOHTTP2Handler.OutboundOut
    public typealias OutboundOut = IOData

    public struct Configuration: Sendable, Hashable {
        /// Tokens available at once (and the cap of the bucket).
        public var burst: Int = 1_000
        /// Tokens regained per second.
        public var refillPerSecond: Int = 100
        /// One token regained per this many bytes written to the client.
        public var outboundBytesPerCredit: Int = 4_096
        /// Time the client has to ACK our SETTINGS frames; nil: no limit.
        public var settingsAckTimeout: TimeAmount? = .seconds(10)
        public init() {}
    }

    private enum State {
        case preface(remaining: Int)
        case header
        case payload(remaining: Int)
        case closing
    }

    private static let prefaceLength = 24
    private static let frameHeaderLength = 9

    private let configuration: Configuration
    private let logger: Logger
    private var state: State = .preface(remaining: HTTP2FrameFloodGuard.prefaceLength)
    private var header: [UInt8] = []
    private var tokens: Double
    private var lastRefill: NIODeadline = .now()
    private var outboundRemainder = 0
    private var lastClientStreamID: Int32 = 0
    private var settingsAcksMissing: Int
    private var settingsTimer: Scheduled<Void>?
    private var closeTimer: Scheduled<Void>?

    /// - Parameter expectedSettingsAcks: SETTINGS frames the server sends that the client must
    ///   acknowledge in time (Archway's HTTP/2 connection sends one, with its stream limit).
    public init(configuration: Configuration, expectedSettingsAcks: Int, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.tokens = Double(configuration.burst)
        self.settingsAcksMissing = expectedSettingsAcks
        self.header.reserveCapacity(Self.frameHeaderLength)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if let timeout = configuration.settingsAckTimeout, settingsAcksMissing > 0 {
            settingsTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                self.settingsTimer = nil
                self.abort(context: context, code: .settingsTimeout, reason: "settings_timeout")
            }
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        settingsTimer?.cancel()
        settingsTimer = nil
        closeTimer?.cancel()
        closeTimer = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closing = state { return }  // drop everything once we gave up
        var view = unwrapInboundIn(data)  // a copy of the struct; the storage is shared
        while view.readableBytes > 0 {
            switch state {
            case .preface(let remaining):
                let n = min(remaining, view.readableBytes)
                view.moveReaderIndex(forwardBy: n)
                state = remaining == n ? .header : .preface(remaining: remaining - n)

            case .header:
                let n = min(Self.frameHeaderLength - header.count, view.readableBytes)
                header.append(contentsOf: view.readableBytesView.prefix(n))
                view.moveReaderIndex(forwardBy: n)
                guard header.count == Self.frameHeaderLength else { continue }
                let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
                let type = header[3]
                let flags = header[4]
                let streamID =
                    Int32(header[5] & 0x7f) << 24 | Int32(header[6]) << 16 | Int32(header[7]) << 8 | Int32(header[8])
                header.removeAll(keepingCapacity: true)
                guard inspect(type: type, flags: flags, streamID: streamID, context: context) else {
                    abort(context: context, code: .enhanceYourCalm, reason: "control_frame_flood")
                    return  // this read is not forwarded
                }
                state = length == 0 ? .header : .payload(remaining: length)

            case .payload(let remaining):
                let n = min(remaining, view.readableBytes)
                view.moveReaderIndex(forwardBy: n)
                state = remaining == n ? .header : .payload(remaining: remaining - n)

            case .closing:
                return
            }
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes: Int
        switch unwrapOutboundIn(data) {
        case .byteBuffer(let buffer): bytes = buffer.readableBytes
        case .fileRegion(let region): bytes = region.readableBytes
        }
        outboundRemainder += bytes
        if outboundRemainder >= configuration.outboundBytesPerCredit {
            let credits = outboundRemainder / configuration.outboundBytesPerCredit
            outboundRemainder -= credits * configuration.outboundBytesPerCredit
            tokens = min(Double(configuration.burst), tokens + Double(credits))
        }
        context.write(data, promise: promise)
    }

    /// Returns false when the frame exceeds the budget.
    private func inspect(type: UInt8, flags: UInt8, streamID: Int32, context: ChannelHandlerContext) -> Bool {
        switch type {
        case 0x0, 0x9:  // DATA, CONTINUATION: NIOHTTP2 limits empty DATA / long CONTINUATION runs itself
            return true
        case 0x1:  // HEADERS: remember the last client stream, for GOAWAY
            if streamID & 1 == 1, streamID > lastClientStreamID { lastClientStreamID = streamID }
            return true
        case 0x7:  // GOAWAY from the client: harmless
            return true
        case 0x4 where flags & 0x1 != 0:  // SETTINGS ACK
            if settingsAcksMissing > 0 {
                settingsAcksMissing -= 1
                if settingsAcksMissing == 0 {
                    settingsTimer?.cancel()
                    settingsTimer = nil
                }
            }
            return spend()
        default:  // PRIORITY 0x2, RST_STREAM 0x3, SETTINGS 0x4, PUSH_PROMISE 0x5, PING 0x6, WINDOW_UPDATE 0x8, unknown
            return spend()
        }
    }

    private func spend() -> Bool {
        if tokens < 1 {
            let now = NIODeadline.now()
            let elapsed = Double((now - lastRefill).nanoseconds) / 1e9
            tokens = min(Double(configuration.burst), tokens + elapsed * Double(configuration.refillPerSecond))
            lastRefill = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// GOAWAY through NIOHTTP2Handler (written from the pipeline's tail, so the HTTP/2 state
    /// machine and encoder see it — the same way HTTP2ServerConnectionManager sends its
    /// `too_many_pings` GOAWAY, HummingbirdHTTP2 HTTP2ServerConnectionManager.swift:131-146),
    /// then close; close anyway after a second if the client does not read.
    private func abort(context: ChannelHandlerContext, code: HTTP2ErrorCode, reason: String) {
        if case .closing = state { return }
        state = .closing
        logger.notice("closing abusive HTTP/2 connection", metadata: ["reason": "\(reason)"])
        let goAway = HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(
                lastStreamID: HTTP2StreamID(lastClientStreamID),
                errorCode: code,
                opaqueData: context.channel.allocator.buffer(string: reason)
            )
        )
        let written = context.eventLoop.makePromise(of: Void.self)
        context.pipeline.syncOperations.writeAndFlush(NIOAny(goAway), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        closeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            self.closeTimer = nil
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTP2FrameFloodGuard: Sendable {}
