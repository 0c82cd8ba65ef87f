import Synchronization

/// The last reductions of `Accept` values: clients send the same set with every request, and
/// reading it was 9% of a warm manifest's CPU. At most 64, forgotten all at once when full, so
/// made-up values cost their reading and nothing more.
private let recentManifestAccepts = Mutex<[String: [String]]>([:])

/// Reading `Accept` headers.
extension MediaType {
    /// The media types of `Accept` header values, in order, without duplicates.
    ///
    /// Handles both one comma-joined header (containerd) and one header per type (skopeo):
    /// `["a/b, c/d;q=0.5", "e/f"]` gives `a/b`, `c/d`, `e/f`. Quality values are not weighed:
    /// registries answer with the manifest they have when the client accepts its type at all.
    public static func parseAccept(_ values: some Sequence<String>) -> [MediaType] {
        var result: [MediaType] = []
        var seen = Set<MediaType>()
        for value in values {
            for item in value.split(separator: ",") {
                let type = MediaType(contentType: String(item))
                if !type.rawValue.isEmpty, seen.insert(type).inserted {
                    result.append(type)
                }
            }
        }
        return result
    }

    /// Every manifest type Archway serves, in the order it sends them upstream.
    public static let servedManifestTypes: [MediaType] =
        manifestTypes + [.dockerManifestV1Signed, .dockerManifestV1, .ociArtifactManifest]

    /// A client's `Accept` values reduced to the manifest types Archway knows, in one canonical
    /// order: what becomes part of a cache key and what is sent upstream. A client can therefore
    /// make at most a small, fixed number of distinct keys per tag, whatever it sends; a
    /// wildcard stands for every type, and nothing known reads as no `Accept` at all.
    public static func manifestAccept(_ values: some Sequence<String>) -> [String] {
        let values = Array(values)
        let key = values.joined(separator: "\n")
        if let known = recentManifestAccepts.withLock({ $0[key] }) { return known }
        let accepted = Set(parseAccept(values))
        let result =
            accepted.contains("*/*") || accepted.contains("application/*")
            ? servedManifestTypes.map(\.rawValue) : servedManifestTypes.filter(accepted.contains).map(\.rawValue)
        if key.utf8.count <= 4096 {
            recentManifestAccepts.withLock { recent in
                if recent.count >= 64 { recent.removeAll() }
                recent[key] = result
            }
        }
        return result
    }
}
