import ArchwayApp
import ArgumentParser
import Foundation

struct Mirrors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print (or write) the client configuration that makes containerd, CRI-O/podman or Docker pull through Archway."
    )

    @Argument(help: "containerd, crio or docker.")
    var client: String

    @Option(help: "Where clients reach Archway as a mirror, e.g. https://archway.internal:5000.")
    var url: String?

    @Option(help: "Where clients reach Archway's proxy listener (docker), e.g. http://archway.internal:3128.")
    var proxy: String?

    @Option(help: "The configuration file, for the upstreams to mirror.")
    var config: String?

    @Option(help: "Write the files into this folder (containerd: its certs.d; crio: registries.conf.d; docker: /etc/docker).")
    var write: String?

    @Option(help: "The CA certificate clients must trust: Archway's (containerd), or the proxy's CA (docker --proxy).")
    var ca: String?

    @Option(help: "The platform this node states to Archway (containerd), e.g. linux/arm64. Default: this machine's.")
    var platform: String?

    @Flag(help: "No fallback to the real registries: rewrites always apply and nothing bypasses the cache.")
    var strict = false

    func run() async throws {
        guard let client = MirrorConfiguration.Client(rawValue: client) else {
            throw ValidationError("client must be containerd, crio or docker, not '\(self.client)'")
        }
        guard url != nil || proxy != nil && client == .docker else {
            throw ValidationError("--url is required (--proxy alone is enough for docker)")
        }
        for (name, value) in [("--url", url), ("--proxy", proxy)] {
            if let value, !(value.hasPrefix("http://") || value.hasPrefix("https://")) {
                throw ValidationError("\(name) must start with http:// or https://")
            }
        }
        if proxy != nil && client != .docker { throw ValidationError("--proxy is for docker (containerd and CRI-O have mirrors)") }
        let generator = MirrorConfiguration(
            url: url ?? "", configuration: try loadConfiguration(config), strict: strict, caFile: ca,
            platform: platform ?? Self.hostPlatform(),
            proxy: proxy
        )
        let files = try generator.files(for: client)
        guard let write else {
            for file in files {
                print("# ---- \(file.path)")
                print(file.contents)
            }
            return
        }
        for file in files {
            let path = URL(fileURLWithPath: write).appendingPathComponent(file.path)
            try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
            try file.contents.write(to: path, atomically: true, encoding: .utf8)
            print("wrote \(path.path)")
        }
    }

    /// `linux/<this machine's architecture>`, normalized the way containerd does.
    static func hostPlatform() -> String {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "linux/amd64"
        case "aarch64", "arm64": return "linux/arm64"
        case "armv7l": return "linux/arm/v7"
        case "armv6l": return "linux/arm/v6"
        default: return "linux/\(machine)"
        }
    }
}
