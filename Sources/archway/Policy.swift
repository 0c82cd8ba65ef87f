import ArchwayApp
import ArgumentParser
import Foundation
import Logging
import OCI
import Policies
import Proxy

struct Policy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check and preview policy files.",
        subcommands: [Check.self, Preview.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate policy files; errors as FILE:LINE: message, exit status 1 on any error."
        )

        @Argument(help: "Policy files or folders (default: the configuration's policies folder, else ./policies).")
        var paths: [String] = []

        @Option(help: "The configuration file, for the upstreams members may name.")
        var config: String?

        func run() async throws {
            let configuration = try loadConfiguration(config)
            let paths = self.paths.isEmpty ? [configuration.policiesPath ?? "policies"] : self.paths
            do {
                let policies = try PolicyLoader(upstreams: configuration.upstreamHosts).load(paths: paths)
                for rule in policies.rules {
                    print(
                        "\(rule.location): rule '\(rule.name)': \(rule.repository) tags \(rule.tags.map(\.pattern)) with \(rule.members.count) members"
                    )
                }
                print("\(policies.rules.count) rules: OK")
            } catch {
                for located in error.errors {
                    FileHandle.standardError.write(Data("\(located)\n".utf8))
                }
                throw ExitCode(1)
            }
        }
    }

    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the index a rule would synthesize for IMAGE, its digest, each member's source and warnings."
        )

        @Argument(help: "The image as clients pull it, e.g. docker.io/thedoh/lisa19:1.0.")
        var image: String

        @Option(help: "The configuration file.")
        var config: String?

        func run() async throws {
            var configuration = try loadConfiguration(config)
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("archway-preview-\(getpid())")
            defer { try? FileManager.default.removeItem(at: scratch) }
            configuration.storagePath = scratch.path
            // A preview writes nothing shared: no bucket, no shared catalog.
            configuration.objectStorage = nil
            configuration.catalogDatabase = nil
            configuration.replica = nil
            var logger = Logger(label: "archway")
            logger.logLevel = .critical
            let (registry, _) = try ArchwayServer.makeRegistry(configuration: configuration, logger: logger)
            let reference = try Reference(parsing: image)
            guard let tag = reference.tag, reference.digest == nil else {
                throw ValidationError("pulls by digest are never rewritten: give a tag")
            }
            guard let route = registry.router.route(upstream: reference.registry, repository: reference.repository) else {
                throw ValidationError("'\(reference.registry)' is not a configured upstream")
            }
            guard case .synthesize(let rule) = registry.policies.decision(repository: route.key, tag: tag) else {
                print("no rule applies to \(route.key):\(tag): pulls pass through unchanged")
                return
            }
            let report = try await registry.synthesize(route, tag: tag, rule: rule)
            print("rule: \(rule.name) (\(rule.location))")
            for member in report.members {
                switch member.outcome {
                case .contributed(let platforms): print("member \(member.source): \(platforms.map(\.description).joined(separator: ", "))")
                default: break
                }
            }
            guard let index = report.index else {
                for warning in report.warnings { print("warning: \(warning)") }
                print("no index: neither the tag nor any member exists")
                throw ExitCode(1)
            }
            print("index: \(index.mediaType) \(index.digest) (\(index.bytes.count) bytes)")
            for child in report.children {
                print("  \(child.platform)  \(child.descriptor.digest)  from \(child.source)")
            }
            for warning in report.warnings { print("warning: \(warning)") }
            print(String(decoding: index.bytes, as: UTF8.self))
        }
    }
}

/// The configuration file, or the embedded default.
func loadConfiguration(_ path: String?) throws -> Configuration {
    do {
        return try path.map { try Configuration.load(path: $0) } ?? Configuration.embeddedDefault()
    } catch {
        throw ValidationError("\(error)")
    }
}
