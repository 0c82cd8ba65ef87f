import Hummingbird
import NIOCore

/// The per-request context: Hummingbird's core storage plus who is asking.
public struct ArchwayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's address, for logs and (later) platform learning.
    public let remoteAddress: SocketAddress?
    /// The connection, for handing it files to send (``SendfileHandler``).
    public let channel: any Channel
    /// The connection's event loop, for waiting until queued writes were handed to the socket.
    public var eventLoop: any EventLoop { channel.eventLoop }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.channel = source.channel
    }
}
