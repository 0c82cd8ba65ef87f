import ArchwayApp
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Policies

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the mirror.",
        discussion: "Without --config, runs on the embedded default: plain HTTP on 127.0.0.1:5000, the public registries as upstreams."
    )

    @Option(help: "The configuration file (archway.yaml).")
    var config: String?

    @Option(help: "Listen on HOST:PORT (overrides the configuration).")
    var listen: String?

    @Option(help: "The storage folder (overrides the configuration).")
    var storage: String?

    @Option(help: "The policies folder (overrides the configuration).")
    var policies: String?

    @Flag(help: "Never contact an upstream; serve only what is cached.")
    var offline = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.", transform: Serve.logLevel)
    var logLevel: Logger.Level = .info

    static func logLevel(_ text: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: text) else { throw ValidationError("unknown log level '\(text)'") }
        return level
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "archway")
        var configuration = try loadConfiguration(config)
        if let listen {
            guard let address = Configuration.ListenAddress(listen) else {
                throw ValidationError("--listen must be HOST:PORT, not '\(listen)'")
            }
            configuration.listen = address
        }
        if let storage { configuration.storagePath = storage }
        if let policies { configuration.policiesPath = policies }
        if offline { configuration.offline = true }
        let application = try ArchwayServer.makeApplication(configuration: configuration, logger: logger)
        try await application.runService()
    }
}
