import OCI

/// A request path of the registry API, parsed and validated.
///
/// The path is taken raw, before percent-decoding: a name spelled with `%2e%2e`, `//`, a
/// backslash or a NUL is simply not a repository name. Nothing here ever becomes a file path.
public enum RegistryRoute: Sendable, Hashable {
    case base
    case manifest(RepositoryName, ManifestReference)
    case blob(RepositoryName, Digest)
    case tags(RepositoryName)
    /// `GET /v2/<name>/referrers/<digest>` (OCI distribution 1.1).
    case referrers(RepositoryName, Digest)
    /// Blob uploads: a write, refused as unsupported.
    case upload
    case health
    case ready
    case metrics
    case mismatches
    /// `/_archway/`: the operator's page.
    case operatorPage
    /// `/_archway/api/<section>`: the page's data as JSON.
    case operatorAPI(OperatorSection)
    /// `/_archway/page.css`, `/_archway/page.js`: the page's own style and script.
    case operatorAsset(OperatorAsset)
    /// Another replica streaming this one's download of a digest (authenticated by a
    /// ``PeerToken``, never by a client's credentials).
    case peerFill(Digest)
    case notFound

    /// The route's name in metrics and logs.
    public var name: String {
        switch self {
        case .base: "base"
        case .manifest: "manifest"
        case .blob: "blob"
        case .tags: "tags"
        case .referrers: "referrers"
        case .upload: "upload"
        case .health: "health"
        case .ready: "ready"
        case .metrics: "metrics"
        case .mismatches: "mismatches"
        case .operatorPage: "operator_page"
        case .operatorAPI: "operator_api"
        case .operatorAsset: "operator_asset"
        case .peerFill: "peer_fill"
        case .notFound: "not_found"
        }
    }

    /// Health, readiness, metrics, reports and the operator's page: served by
    /// ``AdminController``, open without credentials unless `auth.admins` closes them.
    public var isOperational: Bool {
        switch self {
        case .health, .ready, .metrics, .mismatches, .operatorPage, .operatorAPI, .operatorAsset: true
        default: false
        }
    }

    /// Liveness and readiness: open to probes whatever `auth.admins` says (they tell nothing
    /// but ok or what keeps the server unready).
    public var isProbe: Bool { self == .health || self == .ready }

    /// The repository the endpoint reads, if it reads one.
    public var repositoryName: RepositoryName? {
        switch self {
        case .manifest(let name, _), .blob(let name, _), .tags(let name), .referrers(let name, _): name
        default: nil
        }
    }

    /// Parses a raw request path (no query). Throws for a name, tag or digest that breaks the
    /// spec's grammar.
    public init(path: String) throws(RegistryError) {
        switch path {
        case "/v2", "/v2/":
            self = .base
            return
        case "/_archway/health":
            self = .health
            return
        case "/_archway/mismatches":
            self = .mismatches
            return
        case "/_archway/ready":
            self = .ready
            return
        case "/metrics":
            self = .metrics
            return
        case "/_archway", "/_archway/":
            self = .operatorPage
            return
        case "/_archway/page.css":
            self = .operatorAsset(.css)
            return
        case "/_archway/page.js":
            self = .operatorAsset(.script)
            return
        default: break
        }
        if path.hasPrefix(Self.operatorAPIPrefix) {
            self = OperatorSection(rawValue: String(path.dropFirst(Self.operatorAPIPrefix.count))).map { .operatorAPI($0) } ?? .notFound
            return
        }
        if path.hasPrefix(Self.peerFillPrefix) {
            self = .peerFill(try Digest(parsing: String(path.dropFirst(Self.peerFillPrefix.count))))
            return
        }
        guard path.hasPrefix("/v2/") else {
            self = .notFound
            return
        }
        let rest = path.dropFirst(4)
        if rest.hasSuffix("/tags/list") {
            self = .tags(try RepositoryName(String(rest.dropLast("/tags/list".count))))
            return
        }
        if Self.lastRange(of: "/blobs/uploads", in: rest) != nil {
            self = .upload
            return
        }
        if let marker = Self.lastRange(of: "/manifests/", in: rest) {
            let name = try RepositoryName(String(rest[..<marker.lowerBound]))
            do {
                self = .manifest(name, try ManifestReference(parsing: String(rest[marker.upperBound...])))
            } catch  where error.code == .tagInvalid {
                // No manifest can have such a tag: unknown, as the distribution spec's conformance
                // suite expects (and still never asked upstream).
                throw RegistryError(.manifestUnknown, "no manifest can have this tag: \(error.message)")
            }
            return
        }
        if let marker = Self.lastRange(of: "/blobs/", in: rest) {
            let name = try RepositoryName(String(rest[..<marker.lowerBound]))
            self = .blob(name, try Digest(parsing: String(rest[marker.upperBound...])))
            return
        }
        if let marker = Self.lastRange(of: "/referrers/", in: rest) {
            let name = try RepositoryName(String(rest[..<marker.lowerBound]))
            self = .referrers(name, try Digest(parsing: String(rest[marker.upperBound...])))
            return
        }
        self = .notFound
    }

    /// The internal endpoint's path, before the digest.
    static let peerFillPrefix = "/_archway/internal/fills/"
    static let operatorAPIPrefix = "/_archway/api/"

    /// Where `marker` (ASCII) last occurs in `text`, compared byte by byte: a path is bytes, and
    /// this runs on every request.
    private static func lastRange(of marker: StaticString, in text: Substring) -> Range<Substring.Index>? {
        let pattern = UnsafeBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount)
        let bytes = text.utf8
        guard var start = bytes.index(bytes.endIndex, offsetBy: -pattern.count, limitedBy: bytes.startIndex) else { return nil }
        while true {
            if bytes[start...].starts(with: pattern) { return start..<bytes.index(start, offsetBy: pattern.count) }
            guard start > bytes.startIndex else { return nil }
            start = bytes.index(before: start)
        }
    }
}

/// A section of the operator's page, and of its JSON API.
public enum OperatorSection: String, Sendable, Hashable, CaseIterable {
    case overview
    case upstreams
    case images
    case policies
    case mismatches
}

/// The page's own files, compiled in.
public enum OperatorAsset: Sendable, Hashable {
    case css
    case script
}
