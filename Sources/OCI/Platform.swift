import Foundation

/// The platform an image runs on: the spec's `platform` object of a descriptor, and what an image
/// config declares.
///
/// Values are kept as written; ``normalized()`` and ``matches(_:)`` (containerd's rules) are
/// for comparing them.
public struct Platform: Hashable, Sendable, Codable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    public init(
        os: String,
        architecture: String,
        variant: String? = nil,
        osVersion: String? = nil,
        osFeatures: [String]? = nil
    ) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.osVersion = osVersion
        self.osFeatures = osFeatures
    }

    enum CodingKeys: String, CodingKey {
        case os
        case architecture
        case variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    /// `os/architecture`, then `/variant` when there is one: `linux/arm64/v8`.
    public var description: String {
        if let variant {
            return "\(os)/\(architecture)/\(variant)"
        }
        return "\(os)/\(architecture)"
    }

    /// An `unknown` os or architecture: what buildx gives the attestation entries of an index.
    /// Such an entry is not an image of any architecture.
    public var isUnknown: Bool { os == "unknown" || architecture == "unknown" }
}

extension Platform {
    /// Parses a specifier as users write it: `os/architecture[/variant]`, or an architecture alone
    /// with `linux` as the os (`arm64`). An os may carry its version in parentheses, as
    /// containerd writes it: `windows(10.0.17763)/amd64`.
    ///
    /// Values are kept as written, not normalized: `Linux/AArch64` parses to exactly that, and
    /// ``normalized()`` makes it `linux/arm64`.
    public init(parsing specifier: String) throws(PlatformError) {
        func fail(_ reason: String) -> PlatformError {
            PlatformError(input: specifier, reason: reason)
        }
        guard !specifier.isEmpty else {
            throw fail("it is empty; expected os/architecture[/variant], e.g. linux/arm64/v8")
        }
        guard specifier.utf8.count <= 255 else {
            throw fail("it is longer than 255 bytes")
        }
        let parts = specifier.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 3 else {
            throw fail("it has \(parts.count) components; expected os/architecture[/variant]")
        }
        for part in parts where part.isEmpty {
            throw fail("it has an empty component")
        }

        var os = "linux"
        var osVersion: String?
        var architecture: String
        var variant: String?
        if parts.count == 1 {
            architecture = String(parts[0])
            if Self.knownOperatingSystems.contains(architecture.lowercased()) {
                throw fail("\(RegistryError.quote(architecture)) is an operating system; add an architecture, e.g. linux/amd64")
            }
        } else {
            var osPart = parts[0]
            if osPart.last == ")", let open = osPart.firstIndex(of: "(") {
                let version = osPart[osPart.index(after: open)..<osPart.index(before: osPart.endIndex)]
                guard Self.isSpecifierComponent(version) else {
                    throw fail("the os version \(RegistryError.quote(version)) is invalid")
                }
                osVersion = String(version)
                osPart = osPart[..<open]
            }
            os = String(osPart)
            architecture = String(parts[1])
            if parts.count == 3 {
                variant = String(parts[2])
            }
        }
        var components = [("os", os), ("architecture", architecture)]
        if let variant {
            components.append(("variant", variant))
        }
        for (name, value) in components {
            guard Self.isSpecifierComponent(value[...]) else {
                throw fail(
                    "the \(name) \(RegistryError.quote(value)) may only contain letters, digits, '.', '_' and '-', "
                        + "starting with a letter or digit"
                )
            }
        }
        self.init(os: os, architecture: architecture, variant: variant, osVersion: osVersion)
    }

    /// containerd's specifier component, `[A-Za-z0-9_.-]+`, but starting with a letter or digit so
    /// that `..` and `-x` are not platforms.
    private static func isSpecifierComponent(_ value: Substring) -> Bool {
        guard let first = value.utf8.first, isAlphanumeric(first) else {
            return false
        }
        return value.utf8.allSatisfy {
            isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
        }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            false
        }
    }

    /// Go's list of operating systems (containerd's `isKnownOS`).
    static let knownOperatingSystems: Set<String> = [
        "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
        "netbsd", "openbsd", "plan9", "solaris", "windows", "zos",
    ]
}
