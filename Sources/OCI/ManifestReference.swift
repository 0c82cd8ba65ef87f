/// The `<reference>` of `/v2/<name>/manifests/<reference>`: a tag or a digest.
public enum ManifestReference: Hashable, Sendable, CustomStringConvertible {
    case tag(Tag)
    case digest(Digest)

    /// A digest when `string` contains `:` (`DIGEST_INVALID` when it is not a valid one), a tag
    /// otherwise (`TAG_INVALID`).
    public init(parsing string: String) throws(RegistryError) {
        if string.utf8.contains(UInt8(ascii: ":")) {
            self = .digest(try Digest(parsing: string))
        } else {
            self = .tag(try Tag(string))
        }
    }

    public var tag: Tag? {
        if case .tag(let tag) = self { tag } else { nil }
    }

    public var digest: Digest? {
        if case .digest(let digest) = self { digest } else { nil }
    }

    public var description: String {
        switch self {
        case .tag(let tag): tag.value
        case .digest(let digest): digest.description
        }
    }
}
