import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import OCI

/// An upstream registry spoken to over HTTP: the distribution API on top of an ``HTTPTransport``,
/// with anonymous, Basic and Bearer-token authentication, redirects and retries.
///
/// It does not cache anything but tokens; caching is the `Proxy` module's business.
public struct RegistryUpstream: Upstream {
    public let name: String
    /// Where Archway fetches, e.g. `https://registry-1.docker.io` (no trailing slash).
    public let baseURL: String
    let credentials: Credentials?
    let transport: any HTTPTransport
    let tokens = TokenCache()
    public let health: UpstreamHealth? = UpstreamHealth()
    let logger: Logger
    /// Manifests, tag lists and tokens are small: their whole exchange is bounded.
    let smallRequestTimeout: Duration
    /// The upstream's own scheme and authority: the only place its credentials and tokens go.
    let home: URLParts?
    /// Hosts besides the upstream's own whose token service gets its credentials
    /// (`token-hosts`; Docker Hub's `auth.docker.io` by default).
    let tokenHosts: Set<String>
    /// `host[:port]`s a redirect may reach even when they are this machine, loopback or
    /// link-local (`redirect-hosts`): a storage service the operator runs beside the registry.
    let redirectHosts: Set<String>

    public init(
        name: String,
        baseURL: String,
        credentials: Credentials? = nil,
        tokenHosts: [String] = [],
        redirectHosts: [String] = [],
        transport: any HTTPTransport = CurlTransport(),
        smallRequestTimeout: Duration = .seconds(60),
        logger: Logger
    ) {
        self.name = name
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.home = URLParts(self.baseURL)
        var tokenHosts = Set(tokenHosts.map { $0.lowercased() })
        if name == "docker.io" || home?.host == "registry-1.docker.io" { tokenHosts.insert("auth.docker.io") }
        self.tokenHosts = tokenHosts
        self.redirectHosts = Set(redirectHosts.map { $0.lowercased() })
        self.credentials = credentials
        self.transport = transport
        self.smallRequestTimeout = smallRequestTimeout
        var logger = logger
        logger[metadataKey: "upstream"] = "\(name)"
        self.logger = logger
    }

    public func manifest(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws -> Manifest {
        let response = try await exchange(.get, repository: repository, path: "manifests/\(reference)", accept: accepting, small: true)
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: Manifest.maximumSize)
        } catch is BodyTooLarge {
            throw UpstreamError.invalidResponse("manifest \(repository):\(reference) is larger than \(Manifest.maximumSize) bytes")
        } catch let error as TransportError {
            throw UpstreamError.transport(error)
        }
        let expected: Digest? = if case .digest(let digest) = reference { digest } else { nil }
        let mediaType = response.headers["Content-Type"].map { MediaType(contentType: $0) }
        do {
            return try Manifest(bytes: Data(buffer: body), mediaType: mediaType, expected: expected)
        } catch {
            throw UpstreamError.invalidResponse("manifest \(repository):\(reference): \(error)")
        }
    }

    public func manifestDescriptor(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws
        -> Descriptor
    {
        let response = try await exchange(.head, repository: repository, path: "manifests/\(reference)", accept: accepting, small: true)
        let headers = response.headers
        guard let digestHeader = headers["Docker-Content-Digest"], let digest = Digest(digestHeader),
            let lengthHeader = headers["Content-Length"], let size = Int64(lengthHeader),
            let contentType = headers["Content-Type"]
        else {
            // Not every registry describes a manifest on HEAD: read it instead.
            return try await manifest(repository, reference, accepting: accepting).descriptor
        }
        if case .digest(let expected) = reference, expected != digest {
            throw UpstreamError.invalidResponse("HEAD \(repository)@\(expected) answered digest \(digest)")
        }
        return Descriptor(mediaType: MediaType(contentType: contentType), digest: digest, size: size)
    }

    public func blobLength(_ repository: RepositoryName, _ digest: Digest) async throws -> Int64? {
        let response = try await exchange(.head, repository: repository, path: "blobs/\(digest)", small: true)
        return response.headers["Content-Length"].flatMap { Int64($0) }
    }

    public func blob(_ repository: RepositoryName, _ digest: Digest) async throws -> BlobResponse {
        let response = try await exchange(.get, repository: repository, path: "blobs/\(digest)", small: false)
        return BlobResponse(contentLength: response.headers["Content-Length"].flatMap { Int64($0) }, body: response.body)
    }

    public func tags(_ repository: RepositoryName, count: Int?, last: String?) async throws -> TagPage {
        var query: [String] = []
        if let count { query.append("n=\(count)") }
        if let last { query.append("last=\(last.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? last)") }
        let path = "tags/list" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let response = try await exchange(.get, repository: repository, path: path, small: true)
        let body = try await response.body.collect(upTo: Manifest.maximumSize)
        guard var page = UpstreamAnswer.tagPage(Data(buffer: body)) else {
            throw UpstreamError.invalidResponse("tag list of \(repository) is not a tag list")
        }
        page.hasMore = UpstreamAnswer.hasNextPage(response.headers.values("Link"))
        return page
    }

    public func referrers(_ repository: RepositoryName, _ digest: Digest) async throws -> ImageIndex? {
        let response: UpstreamResponse
        do {
            response = try await exchange(
                .get, repository: repository, path: "referrers/\(digest)", accept: [MediaType.ociIndex.rawValue], small: true)
        } catch UpstreamError.status(let status, _, _) where status == 404 || status == 405 {
            return nil  // no such API here (distribution 2.8 answers 404)
        }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: Manifest.maximumSize)
        } catch is BodyTooLarge {
            throw UpstreamError.invalidResponse("referrers of \(repository)@\(digest) are larger than \(Manifest.maximumSize) bytes")
        } catch let error as TransportError {
            throw UpstreamError.transport(error)
        }
        // Only an OCI index is an answer of the API; anything else says the upstream has none.
        let manifest: Manifest
        do {
            manifest = try Manifest(bytes: Data(buffer: body), mediaType: MediaType.ociIndex, expected: nil)
        } catch {
            throw UpstreamError.invalidResponse("referrers of \(repository)@\(digest): \(error)")
        }
        guard case .index(let index) = try? manifest.decoded() else {
            throw UpstreamError.invalidResponse("referrers of \(repository)@\(digest) are not an image index")
        }
        return index
    }
}
