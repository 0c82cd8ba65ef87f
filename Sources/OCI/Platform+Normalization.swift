/// containerd's normalization and matching rules (`containerd/platforms`, `database.go`).
extension Platform {
    /// The platform in containerd's canonical spelling.
    ///
    /// | written | normalized |
    /// |---|---|
    /// | `Linux`, `macos` | `linux`, `darwin` |
    /// | `aarch64`, `arm64/v8`, `arm64/8`, `arm64/v8.0` | `arm64` |
    /// | `arm64/9`, `arm64/v9.0` | `arm64/v9` |
    /// | `x86_64`, `x86-64`, `amd64/v1` | `amd64` |
    /// | `i386`, `i486`, `i586`, `i686` | `386` |
    /// | `armhf`, `arm`, `arm/7` | `arm/v7` |
    /// | `armel`, `arm/6` | `arm/v6` |
    ///
    /// An empty variant becomes nil. `osVersion` and `osFeatures` are kept.
    public func normalized() -> Platform {
        var os = os.lowercased()
        if os == "macos" {
            os = "darwin"
        }
        var architecture = architecture.lowercased()
        var variant = variant?.lowercased() ?? ""
        switch architecture {
        case "i386", "i486", "i586", "i686", "386":
            architecture = "386"
            variant = ""
        case "x86_64", "x86-64", "amd64":
            architecture = "amd64"
            if variant == "v1" {
                variant = ""
            }
        case "aarch64", "arm64":
            architecture = "arm64"
            switch variant {
            case "8", "v8", "v8.0": variant = ""
            case "9", "9.0", "v9.0": variant = "v9"
            default: break
            }
        case "armhf":
            architecture = "arm"
            variant = "v7"
        case "armel":
            architecture = "arm"
            variant = "v6"
        case "arm":
            switch variant {
            case "", "7": variant = "v7"
            case "5", "6", "8": variant = "v" + variant
            default: break
            }
        default:
            break
        }
        return Platform(
            os: os,
            architecture: architecture,
            variant: variant.isEmpty ? nil : variant,
            osVersion: osVersion,
            osFeatures: osFeatures
        )
    }

    /// Whether `self` and `other` name the same platform: equal os, architecture and variant after
    /// ``normalized()``, and equal `osVersion` when both have one. `osFeatures` are not compared.
    ///
    /// Deliberately symmetric and exact: an `arm/v7` image does not match an `arm/v6` client
    /// even though the hardware could run it, because a registry mirror reports what was asked
    /// for, not what would happen to work.
    public func matches(_ other: Platform) -> Bool {
        let lhs = normalized()
        let rhs = other.normalized()
        guard lhs.os == rhs.os, lhs.architecture == rhs.architecture, lhs.variant == rhs.variant else {
            return false
        }
        if let left = lhs.osVersion, let right = rhs.osVersion {
            return left == right
        }
        return true
    }
}
