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

    @Test func containerdGetsAHostsTomlPerRegistryWithNamespaceRoutingAndThePlatformHeader() {
        let generator = MirrorConfiguration(
            url: "https://archway.internal:5000/", configuration: configuration, caFile: "/etc/archway/ca.crt", platform: "linux/arm64"
        )
        let files = generator.files(for: .containerd)
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
        #expect(strict.files(for: .containerd)[0].contents.contains(#"server = "https://archway.internal:5000""#))
    }

    @Test func crioMirrorsEachRegistryByPathPrefix() {
        let generator = MirrorConfiguration(url: "http://archway.internal:5000", configuration: configuration, platform: "linux/amd64")
        let file = generator.files(for: .crio)[0]
        #expect(file.path == "50-archway.conf")
        #expect(file.contents.contains("[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\""))
        #expect(
            file.contents.contains(
                "[[registry.mirror]]\nlocation = \"archway.internal:5000/docker.io\"\npull-from-mirror = \"all\"\ninsecure = true"))
        #expect(file.contents.contains("# registry.internal:5000: a host with a port cannot be a path prefix"))
        let strict = MirrorConfiguration(
            url: "https://archway.internal:5000", configuration: configuration, strict: true, platform: "linux/amd64")
        #expect(strict.files(for: .crio)[0].contents.contains("location = \"archway.internal:5000/docker.io\"  # strict"))
    }

    @Test func dockerMirrorsDockerHubOnly() {
        let plain = MirrorConfiguration(url: "http://archway.internal:5000", configuration: configuration, platform: "linux/amd64")
        #expect(
            plain.files(for: .docker)[0].contents
                == "{\n  \"registry-mirrors\": [\"http://archway.internal:5000\"],\n  \"insecure-registries\": [\"archway.internal:5000\"]\n}\n"
        )
        let local = MirrorConfiguration(url: "http://127.0.0.1:5000", configuration: configuration, platform: "linux/amd64")
        #expect(local.files(for: .docker)[0].contents == "{\n  \"registry-mirrors\": [\"http://127.0.0.1:5000\"]\n}\n")
    }
}
