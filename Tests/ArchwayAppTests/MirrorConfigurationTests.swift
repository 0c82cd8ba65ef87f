import Foundation
import Testing

@testable import ArchwayApp

@Suite struct MirrorConfigurationTests {
    let configuration = Configuration(
        listen: .init(host: "0.0.0.0", port: 5000),
        storagePath: "/var/cache/archway",
        upstreams: [
            .init(name: "docker.io", url: "https://registry-1.docker.io", aliases: ["index.docker.io"]),
            .init(name: "registry.internal:5000", url: "http://10.0.0.5:5000"),
        ],
        defaultUpstream: "docker.io"
    )

    @Test func containerdGetsAHostsTomlPerRegistryWithNamespaceRoutingAndThePlatformHeader() throws {
        let generator = MirrorConfiguration(
            url: "https://archway.internal:5000/", configuration: configuration, caFile: "/etc/archway/ca.crt", platform: "linux/arm64"
        )
        let files = try generator.files(for: .containerd)
        #expect(
            files.map(\.path) == [
                "docker.io/hosts.toml", "index.docker.io/hosts.toml", "registry.internal:5000/hosts.toml", "_default/hosts.toml",
            ])
        let hub = files[0].contents
        #expect(hub.contains(#"server = "https://registry-1.docker.io""#))
        #expect(hub.contains(#"[host."https://archway.internal:5000"]"#))
        #expect(hub.contains(#"capabilities = ["pull", "resolve"]"#))
        #expect(hub.contains(#"ca = "/etc/archway/ca.crt""#))
        #expect(hub.contains(#"Archway-Platform = ["linux/arm64"]"#))
        #expect(!files[3].contents.contains("server ="))
        let strict = MirrorConfiguration(
            url: "https://archway.internal:5000", configuration: configuration, strict: true, platform: "linux/amd64")
        #expect(try strict.files(for: .containerd)[0].contents.contains(#"server = "https://archway.internal:5000""#))
    }

    @Test func crioMirrorsEachRegistryByPathPrefix() throws {
        let generator = MirrorConfiguration(url: "http://archway.internal:5000", configuration: configuration, platform: "linux/amd64")
        let file = try generator.files(for: .crio)[0]
        #expect(file.path == "50-archway.conf")
        #expect(file.contents.contains("[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\""))
        #expect(
            file.contents.contains(
                "[[registry.mirror]]\nlocation = \"archway.internal:5000/docker.io\"\npull-from-mirror = \"all\"\ninsecure = true"))
        #expect(file.contents.contains("# registry.internal:5000: a host with a port cannot be a path prefix"))
        let strict = MirrorConfiguration(
            url: "https://archway.internal:5000", configuration: configuration, strict: true, platform: "linux/amd64")
        #expect(try strict.files(for: .crio)[0].contents.contains("location = \"archway.internal:5000/docker.io\"  # strict"))
    }

    @Test func dockerMirrorsDockerHubOnly() throws {
        let plain = MirrorConfiguration(url: "http://archway.internal:5000", configuration: configuration, platform: "linux/amd64")
        #expect(
            try plain.files(for: .docker)[0].contents
                == "{\n  \"registry-mirrors\": [\"http://archway.internal:5000\"],\n  \"insecure-registries\": [\"archway.internal:5000\"]\n}\n"
        )
        let local = MirrorConfiguration(url: "http://127.0.0.1:5000", configuration: configuration, platform: "linux/amd64")
        #expect(try local.files(for: .docker)[0].contents == "{\n  \"registry-mirrors\": [\"http://127.0.0.1:5000\"]\n}\n")
    }

    @Test func dockerBehindTheProxyGetsADropInAndTheCAPerRegistry() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "archway-mirrors-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = directory.appendingPathComponent("ca.crt")
        try "-----BEGIN CERTIFICATE-----\n...\n".write(to: ca, atomically: true, encoding: .utf8)
        let generator = MirrorConfiguration(
            url: "", configuration: configuration, caFile: ca.path, platform: "linux/amd64", proxy: "http://archway.internal:3128")
        let files = try generator.files(for: .docker)
        #expect(!files.contains { $0.path == "daemon.json" }, "no mirror URL: the proxy alone")
        let dropIn = try #require(files.first { $0.path == "docker.service.d/http-proxy.conf" })
        #expect(dropIn.contents.contains("Environment=\"HTTPS_PROXY=http://archway.internal:3128\""))
        #expect(dropIn.contents.contains("NO_PROXY=localhost,127.0.0.1,::1,archway.internal\""))
        #expect(dropIn.contents.contains("/etc/containers/certs.d/<registry>/ca.crt"), "where the CA goes for podman")
        #expect(dropIn.contents.contains("/etc/containerd/certs.d/<registry>/hosts.toml"), "and for containerd")
        #expect(
            Set(files.filter { $0.path.hasPrefix("certs.d/") }.map(\.path))
                == ["certs.d/docker.io/ca.crt", "certs.d/index.docker.io/ca.crt", "certs.d/registry.internal:5000/ca.crt"])
    }
}
