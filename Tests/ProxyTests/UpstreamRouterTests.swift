import ArchwayTesting
import OCI
import Proxy
import Testing

@Suite struct UpstreamRouterTests {
    let router: UpstreamRouter

    init() throws {
        router = try UpstreamRouter(
            [
                .init(upstream: InMemoryUpstream(name: "docker.io"), aliases: ["index.docker.io", "registry-1.docker.io"]),
                .init(upstream: InMemoryUpstream(name: "ghcr.io")),
                .init(upstream: InMemoryUpstream(name: "registry.internal")),
            ],
            defaultUpstream: "docker.io"
        )
    }

    @Test(
        arguments: [
            ("nginx", nil, "docker.io/library/nginx"),
            ("library/nginx", nil, "docker.io/library/nginx"),
            ("bitnami/nginx", nil, "docker.io/bitnami/nginx"),
            ("ghcr.io/org/app", nil, "ghcr.io/org/app"),
            ("index.docker.io/nginx", nil, "docker.io/library/nginx"),
            ("org/app", "ghcr.io", "ghcr.io/org/app"),
            ("nginx", "docker.io", "docker.io/library/nginx"),
            ("nginx", "registry-1.docker.io", "docker.io/library/nginx"),
            ("nginx", "GHCR.IO", "ghcr.io/nginx"),
            // ns wins over a prefix: the path is the repository on that registry.
            ("ghcr.io/org/app", "docker.io", "docker.io/ghcr.io/org/app"),
            // A one-component name that matches an upstream is a repository, not a prefix.
            ("ghcr.io", nil, "docker.io/library/ghcr.io"),
        ] as [(String, String?, String)])
    func routes(name: String, namespace: String?, key: String) throws {
        #expect(try router.route(try RepositoryName(name), namespace: namespace).key.description == key)
    }

    @Test func unknownNamespacesAreRefused() throws {
        #expect {
            _ = try router.route(try RepositoryName("org/app"), namespace: "attacker.example")
        } throws: { error in
            (error as? RegistryError)?.code == .nameUnknown
        }
    }

    @Test func theDefaultMustBeConfigured() {
        #expect(throws: UpstreamRouter.UnknownUpstream.self) {
            _ = try UpstreamRouter([.init(upstream: InMemoryUpstream(name: "ghcr.io"))], defaultUpstream: "docker.io")
        }
    }
}
