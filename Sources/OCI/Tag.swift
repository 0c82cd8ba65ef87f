/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
///
/// Anything else is refused with `TAG_INVALID`, so a tag is always safe in a path or a
/// database key: it cannot contain `/`, `:` or `@`, nor start with `.` or `-`.
public struct Tag: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String

    /// The longest tag accepted, in characters.
    public static let maximumLength = 128

    /// `latest`, the tag of an image reference that names neither a tag nor a digest.
    public static let latest = Tag(validated: "latest")

    public init(_ value: String) throws(RegistryError) {
        guard let first = value.utf8.first else {
            throw RegistryError(.tagInvalid, "tag is empty")
        }
        guard value.utf8.count <= Self.maximumLength else {
            throw RegistryError(.tagInvalid, "tag is \(value.utf8.count) bytes long; the limit is \(Self.maximumLength)")
        }
        guard Self.isWordByte(first) else {
            throw RegistryError(
                .tagInvalid,
                "tag \(RegistryError.quote(value)) is invalid: it must start with a letter, digit or '_'"
            )
        }
        guard value.utf8.allSatisfy({ Self.isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else {
            throw RegistryError(
                .tagInvalid,
                "tag \(RegistryError.quote(value)) is invalid: only letters, digits, '_', '.' and '-' are allowed"
            )
        }
        self.value = value
    }

    private init(validated value: String) {
        self.value = value
    }

    public var description: String { value }

    public static func < (lhs: Tag, rhs: Tag) -> Bool {
        lhs.value < rhs.value
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}
