import Policies
import Testing

@Suite struct GlobTests {
    @Test(arguments: [
        ("docker.io/library/nginx", "docker.io/library/nginx", true),
        ("docker.io/library/nginx", "docker.io/library/nginx2", false),
        ("docker.io/library/nginx", "docker.io/library/ngin", false),
        ("1.0", "1.0", true),
        ("docker.io/library/*", "docker.io/library/nginx", true),
        ("docker.io/library/*", "docker.io/library/a/b", false),
        ("docker.io/**", "docker.io/library/a/b", true),
        ("docker.io/**", "ghcr.io/library/a", false),
        ("*/library/nginx", "quay.io/library/nginx", true),
        ("docker.io/*/nginx", "docker.io/bitnami/nginx", true),
        ("docker.io/lib?ary/nginx", "docker.io/library/nginx", true),
        ("docker.io/lib?ary/nginx", "docker.io/lib/ary/nginx", false),
        ("**/app", "a/b/c/app", true),
        ("v*", "v1.2.3", true),
        ("v*", "latest", false),
        ("*", "", true),
        ("a*b*c", String(repeating: "a", count: 200) + "x", false),
    ])
    func matches(pattern: String, text: String, expected: Bool) throws {
        #expect(try Glob(pattern).matches(text) == expected)
    }

    @Test(arguments: ["", "docker.io/{name}", "a b", "***", "tag$", String(repeating: "a", count: 600)])
    func invalidPatternsAreRefused(pattern: String) {
        #expect(throws: Glob.Invalid.self) { _ = try Glob(pattern) }
    }
}
