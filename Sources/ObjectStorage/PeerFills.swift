import Foundation
import NIOCore
import OCI
import RegistryClient

/// The other end of a replica's internal endpoint, `GET <replica>/_archway/internal/fills/<digest>`:
/// the bytes of its running download (or of content it stored), as they arrive, never the last
/// byte before the digest matched. Requests carry a ``PeerToken``, never the secret.
public struct PeerFills: Sendable {
    public static let pathPrefix = "/_archway/internal/fills/"

    let secret: [UInt8]
    let transport: any HTTPTransport

    public init(secret: [UInt8], transport: any HTTPTransport = CurlTransport()) {
        self.secret = secret
        self.transport = transport
    }

    /// Why a peer gave no bytes.
    public enum Failure: Error, CustomStringConvertible {
        /// It has neither a download nor the content any more (finished and evicted, or failed).
        case gone
        /// It could not be reached, or did not answer as a replica does.
        case unreachable(String)

        public var description: String {
            switch self {
            case .gone: "the replica has no download of it"
            case .unreachable(let reason): "the replica cannot be reached: \(reason)"
            }
        }
    }

    /// Opens the peer's download of `digest`; the announced length (when the peer knows it) and
    /// the body.
    public func open(_ digest: Digest, at base: String) async throws -> (length: Int64?, body: ByteStream) {
        var headers: UpstreamHeaders = [:]
        headers.add("Authorization", PeerToken.authorization(secret: secret, digest: digest, at: Date()))
        let url = (base.hasSuffix("/") ? String(base.dropLast()) : base) + Self.pathPrefix + digest.description
        let response: UpstreamResponse
        do {
            response = try await transport.send(UpstreamRequest(url: url, headers: headers))
        } catch {
            throw Failure.unreachable("\(error)")
        }
        switch response.status {
        case 200: return (response.headers["Content-Length"].flatMap { Int64($0) }, response.body)
        case 404: throw Failure.gone
        default: throw Failure.unreachable("answered \(response.status)")
        }
    }
}
