import Foundation
import OCI
import Policies
import Testing

@Suite struct PolicyLoaderTests {
    let loader = PolicyLoader(upstreams: ["docker.io", "ghcr.io", "quay.io", "registry.internal:5000"])

    @Test func theDesignExampleLoadsAndDecides() throws {
        let rules = try loader.parse(
            """
            rules:
              - name: lisa19
                repository: docker.io/thedoh/lisa19
                tags: ["*"]
                members:
                  - from: "{repository}:amd64-{tag}"
                  - from: "{repository}:arm64-{tag}"
                    platform: linux/arm64/v8
                  - from: "docker.io/arm32v7/lisa19:{tag}"
            """,
            file: "lisa19.yaml"
        )
        let set = PolicySet(rules: rules)
        let rule = try #require(rules.first)
        #expect(rule.name == "lisa19")
        #expect(rule.location == SourceLocation(file: "lisa19.yaml", line: 2))
        #expect(rule.members[1].platform == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(set.decision(repository: "docker.io/thedoh/lisa19", tag: try Tag("1.0")) == .synthesize(rule))
        #expect(set.decision(repository: "docker.io/thedoh/other", tag: try Tag("1.0")) == .passThrough)
        let members = rule.members.map { $0.expand(repository: "docker.io/thedoh/lisa19", tag: try! Tag("1.0"))?.description }
        #expect(members == ["docker.io/thedoh/lisa19:amd64-1.0", "docker.io/thedoh/lisa19:arm64-1.0", "docker.io/arm32v7/lisa19:1.0"])
    }

    @Test func placeholdersExpand() throws {
        let tag = try Tag("2.1")
        let key = "registry.internal:5000/team/tools/app"
        let cases: [(String, String)] = [
            ("{registry}/mirror/{path}:{tag}", "registry.internal:5000/mirror/team/tools/app:2.1"),
            ("docker.io/arm64v8/{name}", "docker.io/arm64v8/app:2.1"),
            ("{repository}-arm64:{tag}", "registry.internal:5000/team/tools/app-arm64:2.1"),
            ("quay.io/x/{name}@sha256:\(String(repeating: "a", count: 64))", "quay.io/x/app@sha256:\(String(repeating: "a", count: 64))"),
        ]
        for (template, expanded) in cases {
            let member = MemberTemplate(from: template, location: SourceLocation(file: "f", line: 1))
            #expect(member.expand(repository: key, tag: tag)?.description == expanded, "\(template)")
        }
        #expect(MemberTemplate(from: "{repository}:UP/per", location: .init(file: "f", line: 1)).expand(repository: key, tag: tag) == nil)
    }

    @Test(arguments: [
        ("rules:\n  - repository: docker.io/a/b\n    members: [{from: \"{repository}:x\"}]\n    tag: [x]\n", 4, "unknown key 'tag'"),
        ("rules:\n  - repository: docker.io/a b\n    members: [{from: \"{repository}:x\"}]\n", 2, "is not allowed"),
        ("rules:\n  - repository: nowhere.io/a/b\n    members: [{from: \"{repository}:x\"}]\n", 2, "must start with a configured upstream"),
        (
            "rules:\n  - repository: docker.io/a/b\n    members:\n      - from: \"{repository}:{arch}-{tag}\"\n", 4,
            "unknown placeholder {arch}"
        ),
        (
            "rules:\n  - repository: docker.io/a/b\n    members:\n      - from: \"elsewhere.io/a/b:{tag}\"\n", 4,
            "'elsewhere.io' is not a configured upstream"
        ),
        (
            "rules:\n  - repository: docker.io/a/b\n    members:\n      - from: \"{repository}:x\"\n        platform: linux\n", 5,
            "platform: 'linux'"
        ),
        ("rules:\n  - repository: docker.io/a/b\n    tags: [\"v*\"]\n", 2, "'members' is required"),
        ("rules:\n  - repository: docker.io/a/b\n    members: []\n", 3, "members must list at least one image"),
        ("rules:\n  - members: [{from: \"{repository}:x\"}]\n", 2, "'repository' is required"),
        ("rules:\n  - repository: docker.io/a/b\n    members:\n      - from: \"{repository:x\"\n", 4, "unclosed '{'"),
        ("rulez: []\n", 1, "unknown key 'rulez'"),
        (
            "rules:\n  - repository: docker.io/a/b\n    mismatch: fail\n    members: [{from: \"{repository}:x\"}]\n", 3,
            "mismatch must be warn or refuse, not 'fail'"
        ),
        ("rules: [\n", 2, "not valid YAML"),
    ])
    func mistakesNameFileAndLine(yaml: String, line: Int, message: String) {
        do {
            _ = try loader.parse(yaml, file: "broken.yaml")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.errors.first?.location == SourceLocation(file: "broken.yaml", line: line), "\(error)")
            #expect(error.description.contains(message), "\(error)")
            #expect(error.description.hasPrefix("broken.yaml:\(line): "), "\(error)")
        }
    }

    @Test func everyMistakeInAFileIsReported() {
        let yaml = """
            rules:
              - repository: docker.io/a/b
                members:
                  - from: "{repository}:{arch}"
                  - from: "nowhere.io/x/y"
              - repository: nowhere.io/c/d
                members: [{from: "{repository}:x"}]
            """
        do {
            _ = try loader.parse(yaml, file: "f.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.errors.map(\.location.line) == [4, 5, 6])
        }
    }

    /// The examples shipped in policies/ are valid for the embedded default's upstreams.
    @Test func theShippedExamplesLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let hosts: Set<String> = [
            "docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io", "public.ecr.aws",
            "mcr.microsoft.com",
        ]
        let policies = try PolicyLoader(upstreams: hosts).load(paths: [root.appendingPathComponent("policies").path])
        #expect(policies.rules.map(\.name).sorted() == ["example-cross-registry", "example-per-repository", "lisa19"])
        let perRepository = try #require(policies.rules.first { $0.name == "example-per-repository" })
        #expect(
            perRepository.members.compactMap { $0.expand(repository: "docker.io/example/app", tag: try! Tag("3")) }.map(\.description) == [
                "docker.io/amd64/app:3", "docker.io/arm64v8/app:3", "docker.io/arm32v7/app:3",
            ])
    }
}
