import ArchwayApp
import ArgumentParser
import Cache
import Foundation
import Logging
import OCI
import Proxy
import SharedState

struct Mismatches: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report the pulls that got (or would get) an image of another platform, with the rule that fixes each."
    )

    @Option(help: "The configuration file.")
    var config: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Only mismatches seen within this window, e.g. 24h, 30m, 7d.")
    var since: String?

    func run() async throws {
        let configuration = try loadConfiguration(config)
        var window: TimeInterval?
        if let since {
            guard let duration = Duration(parsing: since) else {
                throw ValidationError("--since must be a duration such as 24h, not '\(since)'")
            }
            window = duration.totalSeconds
        }
        var logger = Logger(label: "archway")
        logger.logLevel = .critical
        let catalog: any Catalog
        if let database = configuration.catalogDatabase {
            catalog = PostgresCatalog(database: database, logger: logger)
        } else {
            let catalogPath = StorageLayout(root: URL(fileURLWithPath: configuration.storagePath)).catalogPath.path
            guard FileManager.default.fileExists(atPath: catalogPath) else {
                throw ValidationError("no catalog at \(catalogPath): has Archway run with this storage?")
            }
            catalog = try SQLiteCatalog(path: catalogPath)
        }
        let advisor = MismatchAdvisor(
            router: try ArchwayServer.makeRouter(configuration: configuration, logger: logger),
            catalog: catalog,
            offline: configuration.offline
        )
        let reports = try await ArchwayServer.withRunning(catalog) {
            try await advisor.report(since: window.map { Date().addingTimeInterval(-$0) })
        }
        if json {
            print(String(decoding: try MismatchReport.json(reports), as: UTF8.self))
            return
        }
        guard !reports.isEmpty else {
            print("no architecture mismatches recorded" + (since.map { " in the last \($0)" } ?? ""))
            return
        }
        let header = ["REPOSITORY", "REFERENCE", "CLIENT", "IMAGE", "COUNT", "LAST SEEN", "KIND"]
        let rows = reports.map { report -> [String] in
            let mismatch = report.mismatch
            return [
                mismatch.repository, String(mismatch.reference.prefix(24)), mismatch.clientPlatform, mismatch.imagePlatforms,
                String(mismatch.count), mismatch.lastSeen.formatted(.iso8601), mismatch.kind,
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        for report in reports {
            guard let suggestion = report.suggestion else { continue }
            print("\nsuggested rule for \(report.mismatch.repository) (\(report.mismatch.clientPlatform) clients):")
            print(suggestion, terminator: "")
        }
    }
}
