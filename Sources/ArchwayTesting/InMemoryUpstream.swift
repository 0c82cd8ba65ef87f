import Foundation
import NIOCore
import OCI
import RegistryClient
import Synchronization

/// An upstream registry held in memory, for fast tests of the proxy and the HTTP surface.
///
/// It answers like distribution: manifests by tag or digest (no `Accept` negotiation), blobs with
/// ranges, tag lists with `n`/`last`. It counts the calls it receives, and can be switched off to
/// play an unreachable upstream.
public final class InMemoryUpstream: Upstream {
    public let name: String
    private let state = Mutex(State())

    struct State {
        var manifests: [String: [Digest: Manifest]] = [:]
        var tags: [String: [String: Digest]] = [:]
        var blobs: [Digest: Data] = [:]
        var calls: [String] = []
        var reachable = true
        /// Referrers by subject, for an upstream with the referrers API (nil: without it).
        var referrers: [Digest: [Descriptor]]?
    }

    public init(name: String) {
        self.name = name
    }

    // MARK: - Seeding

    @discardableResult
    public func addManifest(_ repository: String, tag: String?, _ manifest: Manifest) -> Manifest {
        state.withLock { state in
            state.manifests[repository, default: [:]][manifest.digest] = manifest
            if let tag { state.tags[repository, default: [:]][tag] = manifest.digest }
        }
        return manifest
    }

    @discardableResult
    public func addBlob(_ data: Data) -> Digest {
        let digest = Digest.sha256(data)
        state.withLock { $0.blobs[digest] = data }
        return digest
    }

    /// Gives the upstream the referrers API, answering `descriptors` for `subject`.
    public func addReferrers(of subject: Digest, _ descriptors: [Descriptor]) {
        state.withLock { state in
            var referrers = state.referrers ?? [:]
            referrers[subject, default: []] += descriptors
            state.referrers = referrers
        }
    }

    public var isReachable: Bool {
        get { state.withLock { $0.reachable } }
        set { state.withLock { $0.reachable = newValue } }
    }

    /// Every call so far, as `manifest <repo> <ref>`, `head <repo> <ref>`, `blob <repo> <digest>`, `tags <repo>`.
    public var calls: [String] { state.withLock { $0.calls } }

    // MARK: - Upstream

    public func manifest(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws -> Manifest {
        try lookUp(repository, reference, call: "manifest")
    }

    public func manifestDescriptor(_ repository: RepositoryName, _ reference: ManifestReference, accepting: [String]) async throws
        -> Descriptor
    {
        try lookUp(repository, reference, call: "head").descriptor
    }

    public func blobLength(_ repository: RepositoryName, _ digest: Digest) async throws -> Int64? {
        try state.withLock { state throws(UpstreamError) -> Int64? in
            state.calls.append("headblob \(repository) \(digest)")
            guard state.reachable else { throw Self.unreachable }
            guard let data = state.blobs[digest] else {
                throw UpstreamError.status(404, errors: [RegistryError(.blobUnknown, "blob unknown")], retryAfter: nil)
            }
            return Int64(data.count)
        }
    }

    public func blob(_ repository: RepositoryName, _ digest: Digest) async throws -> BlobResponse {
        let data = try state.withLock { state throws(UpstreamError) -> Data in
            state.calls.append("blob \(repository) \(digest)")
            guard state.reachable else { throw Self.unreachable }
            guard let data = state.blobs[digest] else {
                throw UpstreamError.status(404, errors: [RegistryError(.blobUnknown, "blob unknown")], retryAfter: nil)
            }
            return data
        }
        return BlobResponse(contentLength: Int64(data.count), body: ByteStream(ByteBuffer(bytes: data)))
    }

    public func tags(_ repository: RepositoryName, count: Int?, last: String?) async throws -> TagPage {
        try state.withLock { state throws(UpstreamError) -> TagPage in
            state.calls.append("tags \(repository)")
            guard state.reachable else { throw Self.unreachable }
            guard let tags = state.tags[repository.value] else {
                throw UpstreamError.status(
                    404, errors: [RegistryError(.nameUnknown, "repository name not known to registry")], retryAfter: nil)
            }
            var names = tags.keys.sorted()
            if let last { names = names.filter { $0 > last } }
            let limit = count ?? names.count
            return TagPage(name: repository.value, tags: Array(names.prefix(limit)), hasMore: names.count > limit)
        }
    }

    public func referrers(_ repository: RepositoryName, _ digest: Digest) async throws -> ImageIndex? {
        try state.withLock { state throws(UpstreamError) -> ImageIndex? in
            state.calls.append("referrers \(repository) \(digest)")
            guard state.reachable else { throw Self.unreachable }
            guard let referrers = state.referrers else { return nil }
            return ImageIndex(mediaType: .ociIndex, manifests: referrers[digest] ?? [])
        }
    }

    private func lookUp(_ repository: RepositoryName, _ reference: ManifestReference, call: String) throws -> Manifest {
        try state.withLock { state throws(UpstreamError) -> Manifest in
            state.calls.append("\(call) \(repository) \(reference)")
            guard state.reachable else { throw Self.unreachable }
            let digest: Digest?
            switch reference {
            case .tag(let tag): digest = state.tags[repository.value]?[tag.value]
            case .digest(let value): digest = value
            }
            guard let digest, let manifest = state.manifests[repository.value]?[digest] else {
                throw UpstreamError.status(404, errors: [RegistryError(.manifestUnknown, "manifest unknown")], retryAfter: nil)
            }
            return manifest
        }
    }

    static let unreachable = UpstreamError.transport(TransportError(code: 7, message: "Failed to connect: connection refused"))
}
