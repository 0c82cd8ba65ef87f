import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import ProxyServer

/// ``HTTP1ConnectionHandler`` on an embedded channel: what it passes on, what it adds to the
/// response heads, when it closes. (End to end over real sockets: `WarmPathTests`,
/// `TLSTransportTests`, `OperationsTests`.)
@Suite struct HTTP1ConnectionTests {
    static func request(_ version: HTTPVersion = .http1_1, connection: String? = nil) -> HTTPServerRequestPart {
        var head = HTTPRequestHead(version: version, method: .GET, uri: "/v2/")
        if let connection { head.headers.add(name: "Connection", value: connection) }
        return .head(head)
    }

    /// A channel with the handler, connected, on an embedded loop whose clock the test moves.
    static func connection(idleTimeout: TimeAmount? = nil) async throws -> (EmbeddedChannel, EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: HTTP1ConnectionHandler(idleTimeout: idleTimeout, limiter: nil), loop: loop)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        return (channel, loop)
    }

    /// Writes a whole response; returns the head as it left the handler.
    static func respond(_ channel: EmbeddedChannel) throws -> HTTPResponseHead? {
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        guard case .head(let head)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return nil }
        _ = try channel.readOutbound(as: HTTPServerResponsePart.self)
        return head
    }

    @Test(arguments: ["close", "Close", "keep-alive, CLOSE", "upgrade,close"])
    func theCloseTokenEndsTheConnectionAfterItsResponseAndWhatFollowsIsDropped(value: String) async throws {
        let (channel, _) = try await Self.connection()
        try channel.writeInbound(Self.request(connection: value))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        // Pipelined after the last request: never answered.
        try channel.writeInbound(Self.request())
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head? = try channel.readInbound(as: HTTPServerRequestPart.self) else {
            Issue.record("no head")
            return
        }
        guard case .end? = try channel.readInbound(as: HTTPServerRequestPart.self) else {
            Issue.record("no end")
            return
        }
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == nil, "the request after the last was passed on")
        #expect(channel.isActive)
        let head = try Self.respond(channel)
        #expect(head?.headers["connection"] == ["close"])
        #expect(!channel.isActive, "not closed after the last response")
    }

    /// Counts the reads the handler lets through to the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Never
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    @Test func afterARequestPastTheLastNothingMoreIsRead() async throws {
        let (channel, _) = try await Self.connection()
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        try channel.writeInbound(Self.request(connection: "close"))
        channel.read()
        #expect(counter.reads == 1, "reading the last request's body stopped")
        try channel.writeInbound(Self.request())
        channel.read()
        #expect(counter.reads == 1, "still reading after a request past the last")
    }

    @Test func keepAliveRequestsLeaveTheConnectionOpen() async throws {
        let (channel, _) = try await Self.connection()
        for value in [nil, "keep-alive", "closed-captions"] {
            try channel.writeInbound(Self.request(connection: value))
            let head = try Self.respond(channel)
            #expect(head?.headers["connection"] == [], "\(value ?? "none")")
            #expect(channel.isActive, "\(value ?? "none")")
        }
    }

    @Test func http10KeepsTheConnectionOnlyWhenAskedAndSaysSo() async throws {
        let (channel, _) = try await Self.connection()
        try channel.writeInbound(Self.request(.http1_0, connection: "Keep-Alive"))
        #expect(try Self.respond(channel)?.headers["connection"] == ["keep-alive"])
        #expect(channel.isActive)
        try channel.writeInbound(Self.request(.http1_0))
        #expect(try Self.respond(channel)?.headers["connection"] == ["close"])
        #expect(!channel.isActive)
    }

    @Test func anInformationalHeadDoesNotTakeTheFinalResponsesPlace() async throws {
        let (channel, _) = try await Self.connection()
        try channel.writeInbound(Self.request(connection: "close"))
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .continue)))
        guard case .head(let interim)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no interim head")
            return
        }
        #expect(interim.headers["connection"] == [])
        #expect(try Self.respond(channel)?.headers["connection"] == ["close"])
        #expect(!channel.isActive)
    }

    @Test func quiesceClosesAnIdleConnectionAtOnceAndABusyOneAfterItsResponse() async throws {
        let (idle, _) = try await Self.connection()
        idle.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!idle.isActive)

        let (busy, _) = try await Self.connection()
        try busy.writeInbound(Self.request())
        busy.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(busy.isActive, "closed with a request in progress")
        #expect(try Self.respond(busy)?.headers["connection"] == ["close"])
        #expect(!busy.isActive)
    }

    @Test func theRequestTimeoutRunsOnlyWhileNoRequestIsInProgress() async throws {
        let (channel, loop) = try await Self.connection(idleTimeout: .seconds(3))
        loop.advanceTime(by: .seconds(2))
        try channel.writeInbound(Self.request())
        // A long response: the connection is busy, not idle.
        loop.advanceTime(by: .seconds(10))
        #expect(channel.isActive, "closed while a request was in progress")
        _ = try Self.respond(channel)
        loop.advanceTime(by: .seconds(2))
        #expect(channel.isActive, "closed before the timeout since the response")
        try channel.writeInbound(Self.request())
        _ = try Self.respond(channel)
        loop.advanceTime(by: .milliseconds(2900))
        #expect(channel.isActive, "the second wait did not restart the timeout")
        loop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive, "idle past the timeout and still open")
    }

    @Test func aHeadThatNeverCompletesIsCutOff() async throws {
        let (channel, loop) = try await Self.connection(idleTimeout: .seconds(3))
        // Bytes of a head arrive, but the decoder emits nothing until it is whole.
        loop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive)
    }

    @Test func stateCountsPipelinedRequests() {
        var state = HTTP1ConnectionState()
        let reads = [
            state.readHead(version: .http1_1, keepAlive: true), state.readHead(version: .http1_1, keepAlive: false),
            state.readHead(version: .http1_1, keepAlive: true),
        ]
        #expect(reads == [true, true, false], "the request after the last one is dropped")
        #expect(state.inProgress == 2)
        let first = (state.writeHead(informational: false), state.writeEnd())
        #expect(first == (.unchanged, .busy))
        let second = (state.writeHead(informational: false), state.writeEnd())
        #expect(second == (.close, .close))
        // A 400 for a head that never parsed: no request to count.
        var broken = HTTP1ConnectionState()
        _ = broken.writeHead(informational: false)
        let end = broken.writeEnd()
        #expect(end == .idle)
        #expect(broken.inProgress == 0)
    }
}
