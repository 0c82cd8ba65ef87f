import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A blob as stored in a registry.
public struct BlobRef: Sendable, Hashable, CustomStringConvertible {
    /// `sha256:<hex>`
    public let digest: String
    public let size: Int64

    public init(digest: String, size: Int64) {
        self.digest = digest
        self.size = size
    }

    public var description: String { "\(digest) (\(size) bytes)" }
}

/// Pushes raw blobs and manifests to a registry over the distribution API, byte for byte (unlike
/// skopeo, which recompresses layers): monolithic uploads `POST /v2/<repo>/blobs/uploads/` then
/// `PUT <Location>&digest=...`, and `PUT /v2/<repo>/manifests/<reference>`.
public struct RegistryUploader: Sendable {
    /// e.g. `http://127.0.0.1:5000`
    public let baseURL: String

    public init(baseURL: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    public init(_ registry: UpstreamRegistry) {
        self.init(baseURL: registry.url)
    }

    /// Uploads `data` as one blob; returns its digest and size.
    @discardableResult
    public func pushBlob(repository: String, data: Data) async throws -> BlobRef {
        let blob = BlobRef(digest: sha256Digest(data), size: Int64(data.count))
        let target = try await startUpload(repository: repository, digest: blob.digest)
        var request = try makeRequest("PUT", target)
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.setValue(String(data.count), forHTTPHeaderField: "Content-Length")
        let (body, response) = try await harnessURLSession.upload(for: request, from: data)
        try finishUpload(HTTPResult(response, body, url: target), blob: blob, repository: repository)
        return blob
    }

    /// Uploads a file as one blob, streamed from disk (the file may be larger than memory). The
    /// digest is computed first by streaming the file through SHA-256.
    @discardableResult
    public func pushBlob(repository: String, file: URL) async throws -> BlobRef {
        let (digest, size) = try sha256AndSizeOfFile(file)
        let blob = BlobRef(digest: digest, size: size)
        let target = try await startUpload(repository: repository, digest: digest)
        var request = try makeRequest("PUT", target, timeout: 3600)
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.setValue(String(size), forHTTPHeaderField: "Content-Length")
        let (body, response) = try await harnessURLSession.upload(for: request, fromFile: file)
        try finishUpload(HTTPResult(response, body, url: target), blob: blob, repository: repository)
        return blob
    }

    /// `PUT /v2/<repository>/manifests/<reference>` (a tag or the digest); returns the digest the
    /// registry reports in `Docker-Content-Digest`, after checking that it is the SHA-256 of `bytes`.
    @discardableResult
    public func pushManifest(repository: String, reference: String, bytes: Data, mediaType: String) async throws -> String {
        let url = "\(baseURL)/v2/\(repository)/manifests/\(reference)"
        let response = try await httpRequest("PUT", url, headers: ["Content-Type": mediaType], body: bytes)
        guard response.status == 201 else {
            throw HarnessError("PUT \(url) answered \(response.status): \(response.bodyText)")
        }
        let expected = sha256Digest(bytes)
        guard let reported = response.header("Docker-Content-Digest") else {
            throw HarnessError("PUT \(url) answered without Docker-Content-Digest")
        }
        guard reported == expected else {
            throw HarnessError("PUT \(url): registry reports \(reported), the bytes hash to \(expected)")
        }
        return reported
    }

    /// `GET /v2/<repository>/manifests/<reference>` with the given `Accept` (all manifest types by default).
    public func fetchManifest(
        repository: String,
        reference: String,
        accept: [String] = allManifestMediaTypes
    ) async throws -> HTTPResult {
        try await httpRequest(
            "GET", "\(baseURL)/v2/\(repository)/manifests/\(reference)",
            headers: ["Accept": accept.joined(separator: ", ")]
        )
    }

    /// `GET /v2/<repository>/blobs/<digest>`.
    public func fetchBlob(repository: String, digest: String) async throws -> HTTPResult {
        try await httpRequest("GET", "\(baseURL)/v2/\(repository)/blobs/\(digest)")
    }

    /// Whether `HEAD /v2/<repository>/blobs/<digest>` answers 200.
    public func blobExists(repository: String, digest: String) async throws -> Bool {
        try await httpRequest("HEAD", "\(baseURL)/v2/\(repository)/blobs/\(digest)").status == 200
    }

    /// `DELETE /v2/<repository>/manifests/<digest>` (the registry has deletes enabled); this also
    /// removes every tag that points at it.
    public func deleteManifest(repository: String, digest: String) async throws {
        let url = "\(baseURL)/v2/\(repository)/manifests/\(digest)"
        let response = try await httpRequest("DELETE", url)
        guard response.status == 202 else {
            throw HarnessError("DELETE \(url) answered \(response.status): \(response.bodyText)")
        }
    }

    /// `DELETE /v2/<repository>/blobs/<digest>`.
    public func deleteBlob(repository: String, digest: String) async throws {
        let url = "\(baseURL)/v2/\(repository)/blobs/\(digest)"
        let response = try await httpRequest("DELETE", url)
        guard response.status == 202 else {
            throw HarnessError("DELETE \(url) answered \(response.status): \(response.bodyText)")
        }
    }

    // MARK: -

    /// `POST /v2/<repository>/blobs/uploads/`; returns the URL to `PUT` the bytes to (digest added).
    private func startUpload(repository: String, digest: String) async throws -> String {
        let url = "\(baseURL)/v2/\(repository)/blobs/uploads/"
        let response = try await httpRequest("POST", url, headers: ["Content-Length": "0"], body: Data())
        guard response.status == 202, let location = response.header("Location") else {
            throw HarnessError("POST \(url) answered \(response.status): \(response.bodyText)")
        }
        let absolute = location.hasPrefix("http://") || location.hasPrefix("https://") ? location : baseURL + location
        return absolute + (absolute.contains("?") ? "&" : "?") + "digest=" + digest
    }

    private func finishUpload(_ response: HTTPResult, blob: BlobRef, repository: String) throws {
        guard response.status == 201 else {
            throw HarnessError("upload of \(blob) to \(repository) answered \(response.status): \(response.bodyText)")
        }
        if let reported = response.header("Docker-Content-Digest"), reported != blob.digest {
            throw HarnessError("upload of \(blob) to \(repository): registry reports \(reported)")
        }
    }

    private func makeRequest(_ method: String, _ url: String, timeout: TimeInterval = 300) throws -> URLRequest {
        guard let target = URL(string: url) else { throw HarnessError("bad URL: \(url)") }
        var request = URLRequest(url: target, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        return request
    }
}

/// Every manifest media type, for an `Accept` header.
public let allManifestMediaTypes: [String] = [
    MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerManifestList, MediaTypes.dockerManifest,
]

/// The media types the harness writes.
public enum MediaTypes {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
}
