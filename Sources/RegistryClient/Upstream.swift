import OCI

/// A registry Archway reads from. Each method answers one question of the distribution API;
/// failures are thrown as ``UpstreamError``.
///
/// The libcurl-backed ``RegistryUpstream`` talks to real registries; tests use an in-memory one.
public protocol Upstream: Sendable {
    /// The registry host clients know this upstream by, e.g. `docker.io`.
    var name: String { get }

    /// `GET /v2/<repository>/manifests/<reference>`. A manifest asked by digest is verified.
    func manifest(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws -> Manifest

    /// `HEAD /v2/<repository>/manifests/<reference>`: what the manifest is, without its bytes.
    func manifestDescriptor(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws
        -> Descriptor

    /// `HEAD /v2/<repository>/blobs/<digest>`: confirms the repository has the blob (its length,
    /// when announced); throws the upstream's 404 when it does not.
    func blobLength(_ repository: RepositoryName, _ digest: Digest) async throws -> Int64?

    /// `GET /v2/<repository>/blobs/<digest>`, streamed.
    func blob(_ repository: RepositoryName, _ digest: Digest) async throws -> BlobResponse

    /// `GET /v2/<repository>/tags/list`, one page.
    func tags(_ repository: RepositoryName, count: Int?, last: String?) async throws -> TagPage

    /// `GET /v2/<repository>/referrers/<digest>` (OCI distribution 1.1): the manifests whose
    /// `subject` is `digest`, unfiltered. Nil when the upstream does not implement the API (then
    /// clients, and Archway, fall back to the referrers tag schema).
    func referrers(_ repository: RepositoryName, _ digest: Digest) async throws -> ImageIndex?

    /// How it has been answering; nil when it does not say.
    var health: UpstreamHealth? { get }
}

extension Upstream {
    public var health: UpstreamHealth? { nil }

    /// An upstream without the referrers API.
    public func referrers(_ repository: RepositoryName, _ digest: Digest) async throws -> ImageIndex? { nil }
}

/// A blob answer, its body streaming.
public struct BlobResponse: Sendable {
    /// The number of bytes in `body`, when the upstream announced it.
    public var contentLength: Int64?
    public var body: ByteStream

    public init(contentLength: Int64?, body: ByteStream) {
        self.contentLength = contentLength
        self.body = body
    }
}

/// One page of a tag list.
public struct TagPage: Sendable, Hashable, Codable {
    public var name: String
    public var tags: [String]
    /// True when the upstream announced more tags after this page (a `Link: rel="next"`).
    public var hasMore: Bool

    public init(name: String, tags: [String], hasMore: Bool = false) {
        self.name = name
        self.tags = tags
        self.hasMore = hasMore
    }

    enum CodingKeys: String, CodingKey {
        case name
        case tags
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        tags = try container.decodeIfPresent([String].self, forKey: .tags) ?? []
        hasMore = false
    }
}
