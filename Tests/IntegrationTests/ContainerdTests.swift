import ArchwayTesting
import Foundation
import Testing

/// containerd's `ctr` pulling through Archway configured as a `hosts.toml` mirror: containerd
/// sends `?ns=<registry>`, and only that routing reaches the upstream (the default is dead).
@Suite(.serialized) struct ContainerdTests {
    @Test func ctrPullsThroughTheMirrorByNamespace() async throws {
        try await withPullThrough { env in
            try await withContainerd { containerd in
                try await withTemporaryDirectory { hosts in
                    // `server` is loopback too: containerd falls back to it when the mirror fails.
                    for registry in ["registry.test", "docker.io"] {
                        try Containerd.writeHostsToml(
                            directory: hosts, registry: registry, server: "http://127.0.0.1:9", mirror: env.archway.url
                        )
                    }
                    let arm = try await containerd.pull("registry.test/test/multi:1.0", hostsDir: hosts, platform: "linux/arm64")
                    #expect(arm.succeeded, "\(arm)")
                    #expect(
                        try await containerd.imageConfigArchitecture("registry.test/test/multi:1.0", platform: "linux/arm64") == "arm64")
                    #expect(try await containerd.imageDigest("registry.test/test/multi:1.0") == env.images.multi.digest)

                    let hub = try await containerd.pull("docker.io/library/busybox:1", hostsDir: hosts, platform: "linux/amd64")
                    #expect(hub.succeeded, "\(hub)")
                    #expect(try await containerd.imageConfigArchitecture("docker.io/library/busybox:1", platform: "linux/amd64") == "amd64")

                    let list = try await containerd.pull("registry.test/test/dockerlist:1.0", hostsDir: hosts, platform: "linux/arm64")
                    #expect(list.succeeded, "\(list)")
                    #expect(
                        try await containerd.imageConfigArchitecture("registry.test/test/dockerlist:1.0", platform: "linux/arm64")
                            == "arm64")

                    let missing = try await containerd.pull("registry.test/test/multi:1.0", hostsDir: hosts, platform: "linux/s390x")
                    #expect(!missing.succeeded)
                }
            }
            // Every request reached the upstream as the repository on registry.test / docker.io.
            let log = env.upstream.accessLog()
            #expect(log.contains { $0.path == "/v2/library/busybox/manifests/1" })
            #expect(!env.archway.output().contains("nowhere.test unavailable"))
        }
    }
}
