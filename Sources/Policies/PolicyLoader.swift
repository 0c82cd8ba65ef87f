import Foundation
import OCI

/// Reads policy files into a ``PolicySet``, checking everything a mistake could hide in: unknown
/// keys, bad globs, unknown placeholders, members on upstreams that are not configured, bad
/// platforms. Every error names the file and line.
public struct PolicyLoader: Sendable {
    /// The registry hosts (names and aliases) of the configured upstreams.
    public let upstreams: Set<String>

    public init(upstreams: Set<String>) {
        self.upstreams = Set(upstreams.map { $0.lowercased() })
    }

    /// Every problem found, each with its place.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var errors: [LocatedError]
        public var description: String { errors.map(\.description).joined(separator: "\n") }
    }

    /// Loads `*.yaml` and `*.yml` from a folder (sorted by name) or the given files.
    public func load(paths: [String]) throws(Failure) -> PolicySet {
        var files: [String] = []
        var errors: [LocatedError] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                errors.append(LocatedError(SourceLocation(file: path, line: 1), "no such file or folder"))
                continue
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                    .map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        var rules: [PolicyRule] = []
        for file in files {
            do {
                let text = try String(contentsOfFile: file, encoding: .utf8)
                rules += try parse(text, file: file)
            } catch let failure as Failure {
                errors += failure.errors
            } catch {
                errors.append(LocatedError(SourceLocation(file: file, line: 1), "cannot read: \(error.localizedDescription)"))
            }
        }
        guard errors.isEmpty else { throw Failure(errors: errors) }
        return PolicySet(rules: rules)
    }

    /// Parses one policy document.
    public func parse(_ text: String, file: String) throws(Failure) -> [PolicyRule] {
        var errors: [LocatedError] = []
        var rules: [PolicyRule] = []
        do {
            guard let document = try YAMLValue.parse(text, file: file) else { return [] }
            let top = try document.mapping(allowedKeys: ["rules"], context: "policy file")
            guard let list = top["rules"] else { return [] }
            for (index, entry) in try list.sequence("rules").enumerated() {
                do {
                    rules.append(try rule(entry, index: index, file: file))
                } catch let error as LocatedError {
                    errors.append(error)
                } catch let failure as Failure {
                    errors += failure.errors
                } catch {
                    errors.append(entry.error("\(error)"))
                }
            }
        } catch {
            errors.append(error)
        }
        guard errors.isEmpty else { throw Failure(errors: errors) }
        return rules
    }

    private func rule(_ entry: YAMLValue, index: Int, file: String) throws -> PolicyRule {
        let keys = try entry.mapping(allowedKeys: ["name", "repository", "tags", "members", "mismatch"], context: "rule")
        let name = try keys["name"].map { try $0.string("name") } ?? "\((file as NSString).lastPathComponent)#\(index + 1)"
        guard let repositoryValue = keys["repository"] else { throw entry.error("rule: 'repository' is required") }
        let repository = try glob(repositoryValue, "repository")
        let components = repository.pattern.split(separator: "/", omittingEmptySubsequences: false)
        let registry = String(components[0])
        let registryIsPattern = registry.contains("*") || registry.contains("?")
        if components.count < 2 || (!registryIsPattern && !upstreams.contains(registry)) {
            throw repositoryValue.error(
                "repository '\(repository)' must start with a configured upstream (\(upstreams.sorted().joined(separator: ", "))), as in docker.io/library/nginx"
            )
        }
        var tags: [Glob] = [try Glob("*")]
        if let tagsValue = keys["tags"] {
            tags = []
            for item in try tagsValue.sequence("tags") { tags.append(try glob(item, "tags")) }
            if tags.isEmpty { throw tagsValue.error("tags must list at least one glob (or be left out for all tags)") }
        }
        guard let membersValue = keys["members"] else { throw entry.error("rule '\(name)': 'members' is required") }
        var members: [MemberTemplate] = []
        var errors: [LocatedError] = []
        for item in try membersValue.sequence("members") {
            do {
                members.append(try member(item))
            } catch {
                errors.append(error)
            }
        }
        if !errors.isEmpty { throw Failure(errors: errors) }
        if members.isEmpty { throw membersValue.error("rule '\(name)': members must list at least one image") }
        var mismatch: MismatchAction?
        if let value = keys["mismatch"] {
            let text = try value.string("mismatch")
            guard let action = MismatchAction(rawValue: text) else { throw value.error("mismatch must be warn or refuse, not '\(text)'") }
            mismatch = action
        }
        return PolicyRule(name: name, repository: repository, tags: tags, members: members, location: entry.location, mismatch: mismatch)
    }

    private func glob(_ value: YAMLValue, _ what: String) throws(LocatedError) -> Glob {
        let text = try value.string(what)
        do {
            return try Glob(text)
        } catch {
            throw value.error("\(what): \(error.reason)")
        }
    }

    private func member(_ value: YAMLValue) throws(LocatedError) -> MemberTemplate {
        let keys = try value.mapping(allowedKeys: ["from", "platform"], context: "member")
        guard let fromValue = keys["from"] else { throw value.error("member: 'from' is required, e.g. \"{repository}:arm64-{tag}\"") }
        let from = try fromValue.string("from")
        var rest = Substring(from)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { throw fromValue.error("from: unclosed '{' in '\(from)'") }
            let placeholder = String(rest[rest.index(after: open)..<close])
            guard MemberTemplate.placeholders.contains(placeholder) else {
                throw fromValue.error(
                    "from: unknown placeholder {\(placeholder)} (known: \(MemberTemplate.placeholders.map { "{\($0)}" }.joined(separator: ", ")))"
                )
            }
            rest = rest[rest.index(after: close)...]
        }
        if rest.contains("}") { throw fromValue.error("from: unmatched '}' in '\(from)'") }
        let registry = String(from.prefix { $0 != "/" })
        if !registry.hasPrefix("{repository}") && registry != "{registry}" {
            guard from.contains("/") else {
                throw fromValue.error("from: '\(from)' must name a registry, e.g. docker.io/arm64v8/{name}:{tag}")
            }
            guard upstreams.contains(registry.lowercased()) else {
                throw fromValue.error(
                    "from: '\(registry)' is not a configured upstream (configured: \(upstreams.sorted().joined(separator: ", ")))"
                )
            }
        }
        // The template must make a valid reference for a typical expansion.
        let sample = MemberTemplate(from: from, location: fromValue.location).expand(
            repository: "\(upstreams.sorted().first ?? "docker.io")/library/sample", tag: Tag.latest)
        if sample == nil { throw fromValue.error("from: '\(from)' does not expand to a valid image reference") }
        var platform: Platform?
        if let platformValue = keys["platform"] {
            let text = try platformValue.string("platform")
            do {
                platform = try Platform(parsing: text)
            } catch {
                throw platformValue.error("platform: '\(text)' is not os/architecture[/variant] (\(error.reason))")
            }
        }
        return MemberTemplate(from: from, platform: platform, location: fromValue.location)
    }
}
