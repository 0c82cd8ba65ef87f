/// Who asks: what a request says about its sender.
public struct Client: Sendable, Hashable {
    /// The remote IP address, without port.
    public var address: String?
    public var userAgent: String?
    /// The `Archway-Platform` header.
    public var platformHeader: String?

    public init(address: String? = nil, userAgent: String? = nil, platformHeader: String? = nil) {
        self.address = address
        self.userAgent = userAgent
        self.platformHeader = platformHeader
    }

    public static let unknown = Client()
}
