/// A request Archway sends to an upstream: only reads, so only GET and HEAD.
public struct HTTPRequest: Sendable, Hashable {
    public enum Method: String, Sendable, Hashable {
        case get = "GET"
        case head = "HEAD"
    }

    public var method: Method
    public var url: String
    public var headers: HTTPHeaders
    /// Limits the whole exchange; `nil` for blob downloads, whose length is unbounded.
    public var totalTimeout: Duration?
    /// Refuse to connect to this machine, loopback, link-local or unspecified addresses (a
    /// redirect target the upstream chose): checked on the address actually connected to.
    public var refusesInternalAddresses = false

    public init(method: Method = .get, url: String, headers: HTTPHeaders = [:], totalTimeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.totalTimeout = totalTimeout
    }
}

/// The status line and headers of an upstream response.
public struct HTTPResponseHead: Sendable, Hashable {
    public var status: Int
    public var headers: HTTPHeaders

    public init(status: Int, headers: HTTPHeaders) {
        self.status = status
        self.headers = headers
    }
}

/// An upstream response whose body arrives as a stream.
public struct HTTPResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: ByteStream

    public init(head: HTTPResponseHead, body: ByteStream) {
        self.head = head
        self.body = body
    }

    public var status: Int { head.status }
    public var headers: HTTPHeaders { head.headers }
}
