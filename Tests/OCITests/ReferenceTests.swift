import OCI
import Testing

struct ReferenceTests {
    static let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @Test(
        arguments: [
            ("nginx", "docker.io", "library/nginx", "latest", nil),
            ("nginx:1.25", "docker.io", "library/nginx", "1.25", nil),
            ("library/nginx", "docker.io", "library/nginx", "latest", nil),
            ("docker.io/nginx", "docker.io", "library/nginx", "latest", nil),
            ("docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", nil),
            ("index.docker.io/x", "docker.io", "library/x", "latest", nil),
            ("registry-1.docker.io/x/y:z", "docker.io", "x/y", "z", nil),
            ("thedoh/lisa19:amd64-1.0", "docker.io", "thedoh/lisa19", "amd64-1.0", nil),
            ("ghcr.io/org/app:1.0", "ghcr.io", "org/app", "1.0", nil),
            ("ghcr.io/app", "ghcr.io", "app", "latest", nil),
            ("ghcr.io", "docker.io", "library/ghcr.io", "latest", nil),
            ("GHCR.IO/org/app", "ghcr.io", "org/app", "latest", nil),
            ("localhost/app", "localhost", "app", "latest", nil),
            ("localhost:5000/a/b@sha256:\(hex)", "localhost:5000", "a/b", nil, "sha256:\(hex)"),
            ("registry.internal:5000/team/app:v2@sha256:\(hex)", "registry.internal:5000", "team/app", "v2", "sha256:\(hex)"),
            ("nginx@sha256:\(hex)", "docker.io", "library/nginx", nil, "sha256:\(hex)"),
            ("localhost:5000", "docker.io", "library/localhost", "5000", nil),
            ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", nil),
            ("[::1]:5000/app", "[::1]:5000", "app", "latest", nil),
            ("quay.io/a/b/c/d:tag_1", "quay.io", "a/b/c/d", "tag_1", nil),
        ] as [(String, String, String, String?, String?)])
    func parsesLikeDocker(text: String, registry: String, repository: String, tag: String?, digest: String?) throws {
        let reference = try Reference(parsing: text)
        #expect(reference.registry == registry)
        #expect(reference.repository.value == repository)
        #expect(reference.tag?.value == tag)
        #expect(reference.digest?.description == digest)
        #expect(reference.repositoryKey == "\(registry)/\(repository)")
    }

    @Test(arguments: [
        ("nginx", "docker.io/library/nginx:latest"),
        ("ghcr.io/org/app:1.0", "ghcr.io/org/app:1.0"),
        ("localhost:5000/a/b@sha256:\(hex)", "localhost:5000/a/b@sha256:\(hex)"),
        ("a/b:c@sha256:\(hex)", "docker.io/a/b:c@sha256:\(hex)"),
        ("index.docker.io/x", "docker.io/library/x:latest"),
    ])
    func describesFullyQualified(text: String, description: String) throws {
        let reference = try Reference(parsing: text)
        #expect(reference.description == description)
        #expect(try Reference(parsing: reference.description) == reference)
    }

    @Test(arguments: [
        ("", RegistryError.Code.nameInvalid),
        ("UPPER", .nameInvalid),
        ("docker.io/Library/nginx", .nameInvalid),
        ("nginx:", .tagInvalid),
        ("nginx:.bad", .tagInvalid),
        ("nginx:a" + String(repeating: "b", count: 128), .tagInvalid),
        ("nginx@", .digestInvalid),
        ("nginx@sha256:abc", .digestInvalid),
        ("nginx@sha256:\(hex)@sha256:\(hex)", .digestInvalid),
        ("nginx@SHA256:\(hex.uppercased())", .digestInvalid),
        ("ghcr.io/", .nameInvalid),
        ("/nginx", .nameInvalid),
        ("a//b", .nameInvalid),
        ("../etc/passwd", .nameInvalid),
        ("..:1/x", .nameInvalid),
        ("-bad.io/x", .nameInvalid),
        ("bad..io/x", .nameInvalid),
        ("host:0/x", .nameInvalid),
        ("host:65536/x", .nameInvalid),
        ("host:+80/x", .nameInvalid),
        ("host:/x", .nameInvalid),
        ("https://ghcr.io/app", .nameInvalid),
        ("[::1/x", .nameInvalid),
        ("[zz]:5000/x", .nameInvalid),
        ("%2e%2e/x", .nameInvalid),
        ("ghcr.io/%2e%2e/x", .nameInvalid),
        ("exämple.com/x", .nameInvalid),
        ("ghcr.io/a\0b", .nameInvalid),
        (" nginx", .nameInvalid),
    ])
    func refusesInvalidReferences(text: String, code: RegistryError.Code) {
        let error = #expect(throws: RegistryError.self) { try Reference(parsing: text) }
        #expect(error?.code == code, "\(error?.description ?? "")")
    }

    @Test func manifestReferencePrefersTheDigest() throws {
        #expect(try Reference(parsing: "nginx:1").manifestReference == .tag(try Tag("1")))
        let pinned = try Reference(parsing: "nginx:1@sha256:\(Self.hex)")
        #expect(pinned.manifestReference == .digest(try Digest(parsing: "sha256:\(Self.hex)")))
    }

    @Test func memberwise() throws {
        let reference = Reference(registry: "ghcr.io", repository: try RepositoryName("a/b"), tag: try Tag("1"))
        #expect(reference.description == "ghcr.io/a/b:1")
    }
}
