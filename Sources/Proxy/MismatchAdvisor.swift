import Cache
import Foundation
import OCI
import RegistryClient

/// One row of the mismatch report: what broke for whom, and the rule that would fix it.
public struct MismatchReport: Sendable, Hashable, Codable {
    public var mismatch: MismatchRecord
    /// A policy file, ready to paste into the policies folder, when the upstream looks like it
    /// publishes the client's architecture under another tag or repository.
    public var suggestion: String?
}

/// Turns the recorded mismatches into a report, looking upstream for per-architecture tags
/// (`arm64-1.0`, `1.0-arm64`, `1.0_aarch64`) and, on Docker Hub, per-architecture repositories
/// (`arm64v8/app`) that a rule could use.
///
/// It reads the catalog and asks upstreams for tag lists; it never touches the blob store, so
/// `archway mismatches` can run beside a serving Archway.
public struct MismatchAdvisor: Sendable {
    let router: UpstreamRouter
    let catalog: any Catalog
    let offline: Bool

    public init(router: UpstreamRouter, catalog: any Catalog, offline: Bool) {
        self.router = router
        self.catalog = catalog
        self.offline = offline
    }

    public func report(since: Date?) async throws -> [MismatchReport] {
        var reports: [MismatchReport] = []
        var tagLists: [RepositoryKey: [String]] = [:]
        for mismatch in try await catalog.mismatches(since: since) {
            var suggestion: String?
            if !offline, mismatch.rule == nil, let tag = try? Tag(mismatch.reference),
                let platform = try? Platform(parsing: mismatch.clientPlatform)
            {
                suggestion = await suggest(repository: mismatch.repository, tag: tag, platform: platform, tagLists: &tagLists)
            }
            reports.append(MismatchReport(mismatch: mismatch, suggestion: suggestion))
        }
        return reports
    }

    /// Names an architecture goes by in tags.
    static func aliases(_ architecture: String) -> [String] {
        switch architecture {
        case "amd64": ["amd64", "x86_64", "x86-64", "x64"]
        case "arm64": ["arm64", "aarch64", "arm64v8"]
        case "arm": ["arm", "armhf", "armv7", "arm32v7", "armv6", "arm32v6"]
        case "386": ["386", "i386", "x86"]
        default: [architecture]
        }
    }

    /// Docker Hub's per-architecture namespaces of official images.
    static func hubNamespace(_ platform: Platform) -> String? {
        switch (platform.architecture, platform.variant) {
        case ("amd64", _): "amd64"
        case ("arm64", _): "arm64v8"
        case ("arm", "v6"): "arm32v6"
        case ("arm", _): "arm32v7"
        case ("386", _): "i386"
        case ("ppc64le", _), ("s390x", _), ("riscv64", _): platform.architecture
        default: nil
        }
    }

    func suggest(repository key: String, tag: Tag, platform: Platform, tagLists: inout [RepositoryKey: [String]]) async -> String? {
        let registry = String(key.prefix { $0 != "/" })
        guard let path = try? RepositoryName(String(key.dropFirst(registry.count + 1))),
            let route = router.route(upstream: registry, repository: path)
        else { return nil }
        var member: String?
        let tags = await tagList(route, cache: &tagLists)
        search: for alias in Self.aliases(platform.architecture) {
            for (candidate, template) in [
                ("\(alias)-\(tag)", "\(alias)-{tag}"), ("\(tag)-\(alias)", "{tag}-\(alias)"), ("\(tag)_\(alias)", "{tag}_\(alias)"),
            ] where tags.contains(candidate) {
                member = "{repository}:\(template)"
                break search
            }
        }
        if member == nil, route.upstream.name == "docker.io", let namespace = Self.hubNamespace(platform) {
            let name = path.value.split(separator: "/").last.map(String.init) ?? path.value
            if let other = try? RepositoryName("\(namespace)/\(name)"),
                let otherRoute = router.route(upstream: registry, repository: other),
                await tagList(otherRoute, cache: &tagLists).contains(tag.value)
            {
                member = "docker.io/\(namespace)/{name}:{tag}"
            }
        }
        guard let member else { return nil }
        let name = (path.value.split(separator: "/").last.map(String.init) ?? "image") + "-multiarch"
        return """
            rules:
              - name: \(name)
                repository: \(key)
                members:
                  - from: "\(member)"
                    platform: \(platform)

            """
    }

    private func tagList(_ route: UpstreamRouter.Route, cache: inout [RepositoryKey: [String]]) async -> [String] {
        if let known = cache[route.key] { return known }
        let tags = (try? await route.upstream.tags(route.repository, count: nil, last: nil).tags) ?? []
        cache[route.key] = tags
        return tags
    }
}

extension MismatchReport {
    /// The report as JSON: one object per row, snake_case keys, ISO 8601 times.
    public static func json(_ reports: [MismatchReport]) throws -> Data {
        struct Row: Encodable {
            var repository, reference, clientPlatform: String
            var imagePlatforms: [String]
            var kind: String
            var rule: String?
            var count: Int
            var firstSeen, lastSeen: Date
            var lastClient, userAgent, suggestion: String?
        }
        let rows = reports.map { report in
            let mismatch = report.mismatch
            return Row(
                repository: mismatch.repository, reference: mismatch.reference, clientPlatform: mismatch.clientPlatform,
                imagePlatforms: mismatch.imagePlatforms.split(separator: ",").map(String.init), kind: mismatch.kind, rule: mismatch.rule,
                count: mismatch.count, firstSeen: mismatch.firstSeen, lastSeen: mismatch.lastSeen, lastClient: mismatch.lastClient,
                userAgent: mismatch.userAgent, suggestion: report.suggestion
            )
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(rows)
    }
}
