import Hummingbird
import NIOCore
import OCI
import Proxy

/// The per-request context: Hummingbird's core storage, who is asking, and what they asked for,
/// worked out once by ``RegistryResponder`` before any middleware runs.
public struct ArchwayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's address, for logs, throttling and platform learning.
    public let remoteAddress: SocketAddress?
    /// The connection, for handing it files to send (``SendfileHandler``).
    public let channel: any Channel
    /// The connection's event loop, for waiting until queued writes were handed to the socket.
    public var eventLoop: any EventLoop { channel.eventLoop }
    /// The endpoint the path names, or why it names none (a name, tag or digest that breaks the
    /// grammar).
    public var endpoint: Result<RegistryRoute, RegistryError> = .success(.notFound)
    /// Where the endpoint's repository goes (upstream, repository there, private or not); nil
    /// for endpoints without a repository.
    public var repository: Result<UpstreamRouter.Route, RegistryError>?
    /// What the response did on the wire, for the access log.
    public let exchange = Exchange()

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.channel = source.channel
    }

    /// The repository's route; throws why there is none (an unknown `ns`, the allow list).
    func route() throws(RegistryError) -> UpstreamRouter.Route {
        guard let repository else { throw RegistryError(.notFound, "this endpoint names no repository") }
        return try repository.get()
    }
}
