import ArchwayApp
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Policies
import Prometheus
import ServiceLifecycle
import UnixSignals

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

    @Option(help: "Log format: json (one object per line), text, or auto (text on a terminal, json otherwise and under systemd).")
    var logFormat: LogFormat = .auto

    enum LogFormat: String, ExpressibleByArgument {
        case auto, json, text
    }

    func run() async throws {
        let level = logLevel
        let text =
            logFormat == .text
            || (logFormat == .auto && isatty(STDERR_FILENO) != 0 && ProcessInfo.processInfo.environment["JOURNAL_STREAM"] == nil)
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = text ? StreamLogHandler.standardError(label: label) : JSONLogHandler(label: label)
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
        // Before anything uses NIO's event loops: the group is made once, at its first use.
        if let loops = configuration.eventLoops { NIOSingletons.groupLoopCountSuggestion = loops }
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
        let application: any Service
        do {
            application = try ArchwayServer.makeApplication(configuration: configuration, metrics: metrics, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        // SIGTERM: stop accepting, finish in-flight responses and downloads, up to the bound.
        // Shut down in reverse order: the notice first, then the application.
        var group = ServiceGroupConfiguration(
            services: [.init(service: application), .init(service: ShutdownNotice(logger: logger), successTerminationBehavior: .ignore)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        group.maximumGracefulShutdownDuration = configuration.shutdownTimeout + .seconds(5)
        group.maximumCancellationDuration = .seconds(5)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch is CancellationError {
            logger.warning("shutdown bound reached; in-flight work was ended")
        }
        logger.notice("stopped")
    }
}
