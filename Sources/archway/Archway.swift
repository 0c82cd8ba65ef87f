import ArchwayApp
import ArgumentParser

@main
struct Archway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archway",
        abstract: "A pull-through caching proxy for container registries.",
        subcommands: [
            Serve.self, Policy.self, Mismatches.self, Mirrors.self, Prefetch.self, Inspect.self, CertificateAuthorityCommand.self,
        ]
    )
}
