/// A repository name as the distribution spec defines it: `library/nginx`, `org/team/app`.
///
/// Grammar: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most
/// 255 characters. Anything else is refused with `NAME_INVALID`, so a name is always safe to use
/// as a path component list: no `..`, no empty component, no percent escapes, no uppercase.
public struct RepositoryName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String

    /// The longest name accepted, in characters.
    public static let maximumLength = 255

    public init(_ value: String) throws(RegistryError) {
        guard !value.isEmpty else {
            throw RegistryError(.nameInvalid, "repository name is empty")
        }
        guard value.utf8.count <= Self.maximumLength else {
            throw RegistryError(
                .nameInvalid,
                "repository name is \(value.utf8.count) bytes long; the limit is \(Self.maximumLength)"
            )
        }
        for component in value.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if let problem = Self.problem(in: component) {
                throw RegistryError(.nameInvalid, "repository name \(RegistryError.quote(value)) is invalid: \(problem)")
            }
        }
        self.value = value
    }

    /// A part of a valid name that is itself one (its components are valid).
    private init(validated value: Substring) {
        self.value = String(value)
    }

    /// The path components: `["library", "nginx"]`.
    public var components: [Substring] {
        value.split(separator: "/")
    }

    /// The first path component: `library` of `library/nginx`, `nginx` of `nginx`.
    public var firstComponent: Substring {
        value.utf8.firstIndex(of: UInt8(ascii: "/")).map { value[..<$0] } ?? value[...]
    }

    /// The name without its first component: `nginx` of `library/nginx`; nil for a name of one
    /// component.
    public var droppingFirstComponent: RepositoryName? {
        value.utf8.firstIndex(of: UInt8(ascii: "/")).map { RepositoryName(validated: value[value.utf8.index(after: $0)...]) }
    }

    public var description: String { value }

    public static func < (lhs: RepositoryName, rhs: RepositoryName) -> Bool {
        lhs.value < rhs.value
    }

    /// Why `component` does not match `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, or nil when it does.
    private static func problem(in component: Substring.UTF8View.SubSequence) -> String? {
        guard let first = component.first else {
            return "it has an empty path component"
        }
        if component.contains(where: { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) {
            return "it must be lowercase"
        }
        guard isAlphanumeric(first), let last = component.last, isAlphanumeric(last) else {
            return "a path component must start and end with a lowercase letter or digit"
        }
        // Between alphanumeric runs: ".", "_", "__", or any number of "-" (counted, not
        // collected: this runs on every request).
        var separator: UInt8 = 0
        var separatorLength = 0
        func refused(_ run: [UInt8]) -> String {
            "separator \(RegistryError.quote(String(decoding: run, as: UTF8.self))) is not allowed"
        }
        for byte in component {
            if isAlphanumeric(byte) {
                separatorLength = 0
                continue
            }
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                if separatorLength > 0, byte != separator {
                    return refused(Array(repeating: separator, count: separatorLength) + [byte])
                }
                separator = byte
                separatorLength += 1
                let valid =
                    separator == UInt8(ascii: "-") || separatorLength == 1 || (separator == UInt8(ascii: "_") && separatorLength == 2)
                if !valid { return refused(Array(repeating: separator, count: separatorLength)) }
            default:
                return "only lowercase letters, digits, '.', '_', '-' and '/' are allowed"
            }
        }
        return nil
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
