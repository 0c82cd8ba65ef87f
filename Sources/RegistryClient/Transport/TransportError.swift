/// The upstream could not be talked to: no connection, a timeout, a broken transfer.
public struct TransportError: Error, Hashable, CustomStringConvertible {
    /// libcurl's `CURLcode`, 0 when the failure was detected above libcurl.
    public let code: Int32
    public let message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The connection failed before any answer (refused, reset, closed early): worth another try.
    public var isConnectionFailure: Bool {
        // CURLE_COULDNT_CONNECT, CURLE_SSL_CONNECT_ERROR, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR
        [7, 35, 52, 55, 56].contains(code)
    }
}
