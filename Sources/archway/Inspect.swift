import ArchwayApp
import ArgumentParser
import Cache
import Foundation
import LayerInspection
import Logging
import OCI
import Proxy

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what an image really is: per platform, what its config says and what its binaries are.",
        discussion: """
            The binaries are those Archway found when it scanned the image in the background; an image not scanned yet is \
            scanned now, its blobs fetched through the cache as a pull would fetch them. Exits 2 when a binary contradicts \
            its config.
            """
    )

    @Option(help: "The configuration file (its storage and upstreams are used).")
    var config: String?

    @Option(name: .customLong("platform"), help: "Only this platform of an index (os/arch[/variant]); repeatable.")
    var platforms: [String] = []

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Argument(help: "An image as clients pull it, e.g. docker.io/library/alpine:3.20.")
    var image: String

    func run() async throws {
        let (registry, evictor, wanted) = try commandLineRegistry(config: config, platforms: platforms)
        let reference = try Reference(parsing: image)
        guard let route = registry.router.route(upstream: reference.registry, repository: reference.repository) else {
            throw ValidationError("'\(reference.registry)' is not a configured upstream")
        }
        let images = try await ArchwayServer.withRunning(evictor.catalog) {
            try await registry.inspect(
                route, reference.digest.map(ManifestReference.digest) ?? .tag(reference.tag ?? .latest), platforms: wanted)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(images.map(Entry.init)), as: UTF8.self))
        } else {
            print(Self.text(images, reference: "\(reference)"), terminator: "")
        }
        if images.contains(where: { $0.report?.contradicts(architecture: $0.declared.architecture) == true }) { throw ExitCode(2) }
    }

    /// One block per image: the platform listed, what the config says, what runs, the verdict.
    static func text(_ images: [ImageInspection], reference: String) -> String {
        var out = ""
        for image in images {
            out += "\(image.listed?.description ?? "\(reference) (single platform)")  \(image.digest)\n"
            func line(_ label: String, _ value: String) {
                out += "  " + label.padding(toLength: 13, withPad: " ", startingAt: 0) + value + "\n"
            }
            line("config says", image.declared.description)
            guard let report = image.report else {
                line("binaries", "not read (a layer could not be fetched)")
                out += "\n"
                continue
            }
            if !report.chain.isEmpty { line("runs", report.chain.joined(separator: " => ")) }
            if let binary = report.binary {
                line("binary", "\(binary): \(report.elf ?? "?")" + (report.architecture.map { " (\($0))" } ?? ""))
            }
            if !report.executables.isEmpty { line("bin folders", report.executablesSummary) }
            line("verdict", verdict(image, report))
            out += "\n"
        }
        return out
    }

    static func verdict(_ image: ImageInspection, _ report: BinaryReport) -> String {
        if report.contradicts(architecture: image.declared.architecture) {
            return "MISMATCH: the config says \(image.declared.architecture), the binary is \(report.architecture ?? "?"); "
                + "\(image.declared) nodes fail with exec format error"
        }
        switch report.outcome {
        case .found: return "ok"
        case .noEntrypoint: return "unknown: the config names nothing to run"
        case .missing, .unknownFormat, .incomplete: return "unknown: \(report.detail ?? report.outcome.rawValue)"
        }
    }

    /// The JSON form of one image.
    struct Entry: Encodable {
        var listed: String?
        var digest: String
        var declared: String
        var binaries: BinaryReport?
        var mismatch: Bool

        init(_ image: ImageInspection) {
            listed = image.listed?.description
            digest = image.digest.description
            declared = image.declared.description
            binaries = image.report
            mismatch = image.report?.contradicts(architecture: image.declared.architecture) == true
        }
    }
}
