import NIOCore

/// A request Archway sends over libcurl. Registries are only read (GET and HEAD); an object
/// store (S3) is also written, with a body held in memory (a part of an upload, a few MiB).
public struct UpstreamRequest: Sendable, Hashable {
    public enum Method: String, Sendable, Hashable {
        case get = "GET"
        case head = "HEAD"
        case put = "PUT"
        case post = "POST"
        case delete = "DELETE"
    }

    public var method: Method
    public var url: String
    public var headers: UpstreamHeaders
    /// The bytes sent (PUT and POST); curl sends `Content-Length`, never `Expect: 100-continue`.
    public var body: ByteBuffer?
    /// Limits the whole exchange; `nil` for blob downloads, whose length is unbounded.
    public var totalTimeout: Duration?
    /// Refuse to connect to this machine, loopback, link-local or unspecified addresses (a
    /// redirect target the upstream chose): checked on the address actually connected to.
    public var refusesInternalAddresses = false

    public init(
        method: Method = .get, url: String, headers: UpstreamHeaders = [:], body: ByteBuffer? = nil, totalTimeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.totalTimeout = totalTimeout
    }
}

/// The status line and headers of an upstream response.
public struct UpstreamResponseHead: Sendable, Hashable {
    public var status: Int
    public var headers: UpstreamHeaders

    public init(status: Int, headers: UpstreamHeaders) {
        self.status = status
        self.headers = headers
    }
}

/// An upstream response whose body arrives as a stream.
public struct UpstreamResponse: Sendable {
    public var head: UpstreamResponseHead
    public var body: ByteStream

    public init(head: UpstreamResponseHead, body: ByteStream) {
        self.head = head
        self.body = body
    }

    public var status: Int { head.status }
    public var headers: UpstreamHeaders { head.headers }
}
