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
}
