import Foundation
import OCI

/// The platform a client runs on, from what it says about itself: an `Archway-Platform:
/// os/arch[/variant]` header (set per node in containerd's `hosts.toml`), else the User-Agent's
/// `os/<os> arch/<arch>` (Docker, CRI-O). Nil when neither says: unknown stays unknown.
public enum ClientPlatform {
    public static func detect(header: String?, userAgent: String?) -> Platform? {
        if let header, let platform = try? Platform(parsing: header.trimmingCharacters(in: .whitespaces)) {
            return platform.normalized()
        }
        guard let userAgent else { return nil }
        var os: String?
        var architecture: String?
        for word in userAgent.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ")" }) {
            if word.hasPrefix("os/") { os = String(word.dropFirst(3)) }
            if word.hasPrefix("arch/") { architecture = String(word.dropFirst(5)) }
        }
        guard let os, let architecture, !os.isEmpty, !architecture.isEmpty else { return nil }
        return (try? Platform(parsing: "\(os)/\(architecture)"))?.normalized()
    }
}
