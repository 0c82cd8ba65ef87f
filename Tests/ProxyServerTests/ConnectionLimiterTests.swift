import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import Testing

@testable import ProxyServer

@Suite struct ConnectionLimiterTests {
    @Test func aNewcomerReplacesTheLongestIdleConnectionAndBusyOnesStay() async throws {
        let limiter = ConnectionLimiter(limit: 3)
        let channels = (0..<5).map { _ in EmbeddedChannel() }
        for channel in channels { try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get() }
        #expect(limiter.admit(channels[0]))
        #expect(limiter.admit(channels[1]))
        #expect(limiter.admit(channels[2]))
        limiter.markBusy(channels[0])
        limiter.markBusy(channels[2])
        // Full: the only idle one (channels[1]) makes room.
        #expect(limiter.admit(channels[3]))
        #expect(!channels[1].isActive, "the longest-idle connection was closed")
        limiter.remove(channels[1])
        limiter.markBusy(channels[3])
        // Full and all busy: refused.
        #expect(!limiter.admit(channels[4]))
        #expect(channels[0].isActive && channels[2].isActive && channels[3].isActive)
        // One finishes its request and waits: it is the next to make room.
        limiter.markIdle(channels[2])
        #expect(limiter.admit(channels[4]))
        #expect(!channels[2].isActive)
        #expect(limiter.current == 4, "the replaced one stays counted until it is removed on close")
    }

    /// The connection handler of plain HTTP/1 connections marks its connection busy from a request's head to
    /// its response's end, so a connection in the middle of a request is never the one replaced.
    @Test func aConnectionIsBusyFromARequestsHeadToItsResponsesEnd() async throws {
        let limiter = ConnectionLimiter(limit: 2)
        let channels = (0..<3).map { _ in EmbeddedChannel() }
        for channel in channels { try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get() }
        #expect(limiter.admit(channels[0]))
        #expect(limiter.admit(channels[1]))
        limiter.markBusy(channels[1])
        try channels[0].pipeline.syncOperations.addHandler(HTTP1ConnectionHandler(idleTimeout: nil, limiter: limiter))
        try channels[0].writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v2/")))
        #expect(!limiter.admit(channels[2]), "both busy: the newcomer is refused")
        try channels[0].writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channels[0].writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(limiter.admit(channels[2]), "the answered connection waits for its next request: it makes room")
        #expect(!channels[0].isActive && channels[1].isActive)
    }
}
