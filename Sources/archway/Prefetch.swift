import ArchwayApp
import ArgumentParser
import Cache
import Foundation
import Logging
import NIOCore
import OCI
import Proxy
import RegistryClient
import Synchronization

struct Prefetch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Warm the cache with images, for sites that will run offline.",
        discussion: "Every platform of an index unless --platform narrows it. Safe beside a running Archway on the same storage."
    )

    @Option(help: "The configuration file (its storage is warmed).")
    var config: String?

    @Option(name: .customLong("platform"), help: "Only this platform of an index (os/arch[/variant]); repeatable.")
    var platforms: [String] = []

    @Argument(help: "Images as clients pull them, e.g. docker.io/library/alpine:3.20.")
    var images: [String]

    func run() async throws {
        let (registry, evictor, wanted) = try commandLineRegistry(config: config, platforms: platforms)
        let progress = Progress(interactive: isatty(STDOUT_FILENO) != 0)
        var failures = 0
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                progress.tick()
            }
        }
        defer { ticker.cancel() }
        try await ArchwayServer.withRunning(evictor.catalog) {
            for image in images {
                do {
                    try await prefetch(image, registry: registry, platforms: wanted, progress: progress)
                } catch {
                    failures += 1
                    progress.finish(image, "FAILED: \(error)")
                }
            }
            // Downloads record what they stored (and where it came from) after their last byte:
            // wait for that before exiting, or the server would not know the content.
            let deadline = ContinuousClock.now + .seconds(30)
            while registry.fillsInFlight > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        }
        progress.summary(images: images.count, failures: failures)
        if failures > 0 { throw ExitCode(1) }
    }

    private func prefetch(_ image: String, registry: PullThroughRegistry, platforms: [Platform], progress: Progress) async throws {
        let reference = try Reference(parsing: image)
        guard let route = registry.router.route(upstream: reference.registry, repository: reference.repository) else {
            throw ValidationError("'\(reference.registry)' is not a configured upstream")
        }
        // Routed by `ns`, which names any configured upstream, whatever its host looks like.
        let name = route.repository
        let namespace = route.upstream.name
        let accept = MediaType.manifestTypes.map(\.rawValue)
        let top = try await registry.manifest(
            name, reference.digest.map(ManifestReference.digest) ?? .tag(reference.tag ?? .latest), namespace: namespace, accepting: accept
        )
        var manifests: [(Manifest, String)] = []
        switch try top.manifest.decoded() {
        case .index(let index):
            for child in index.manifests where !child.isAttestation {
                guard let platform = child.platform, !platform.isUnknown else { continue }
                if !platforms.isEmpty, !platforms.contains(where: { $0.matches(platform) }) { continue }
                let answer = try await registry.manifest(name, .digest(child.digest), namespace: namespace, accepting: accept)
                manifests.append((answer.manifest, platform.description))
            }
        case .image:
            manifests.append((top.manifest, "single-platform"))
        }
        var blobs: [(Descriptor, String)] = []
        for (manifest, platform) in manifests {
            guard case .image(let image) = try manifest.decoded() else { continue }
            blobs += ([image.config] + image.layers).map { ($0, platform) }
        }
        // What the bar fills up to: every blob of every platform chosen, as the manifests say.
        progress.begin("\(reference)", expected: blobs.reduce(0) { $0 + max(0, $1.0.size) })
        for (blob, platform) in blobs {
            let answer = try await registry.blob(name, blob.digest, namespace: namespace, rangeHeader: nil)
            for try await chunk in answer.body {
                progress.advance(imageName: "\(reference)", platform: platform, bytes: chunk.readableBytes)
            }
        }
        progress.finish("\(reference)", "\(manifests.count) image(s), \(top.manifest.digest)")
    }
}

/// Progress on a terminal (one line rewritten in place: a bar of the image's bytes, the bytes,
/// the rate) or plain lines otherwise.
final class Progress: Sendable {
    static let barWidth = 24
    let interactive: Bool
    private let state = ProgressState()
    private let image = Mutex<(expected: Int64, done: Int64)>((0, 0))

    init(interactive: Bool) {
        self.interactive = interactive
    }

    /// An image starts: `expected` bytes to read for it.
    func begin(_ imageName: String, expected: Int64) {
        image.withLock { $0 = (expected, 0) }
    }

    func advance(imageName: String, platform: String, bytes: Int) {
        let (_, rate, draw) = state.add(bytes)
        let (expected, done) = image.withLock { image in
            image.done += Int64(bytes)
            return (image.expected, image.done)
        }
        guard interactive else { return }
        let line =
            "\(imageName) [\(platform)] \(Self.bar(done, of: expected)) \(done.byteCountText)/\(expected.byteCountText) at \(Int64(rate).byteCountText)/s"
        // Drawn at most ten times a second; what comes between is drawn by the next tick, so a
        // download that pauses shows where it paused.
        // Writes happen under the lock: a tick never draws a bar after the result line.
        pending.withLock { pending in
            pending = draw ? nil : line
            if draw { Self.draw(line) }
        }
    }

    /// Draws the line an advance left undrawn, if any (called every tenth of a second).
    func tick() {
        guard interactive else { return }
        pending.withLock { pending in
            if let line = pending { Self.draw(line) }
            pending = nil
        }
    }

    private static func draw(_ line: String) {
        FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    /// The line an advance did not draw (at most ten draws a second); written only under this lock.
    private let pending = Mutex<String?>(nil)

    /// `[#########---------------]  38%`
    static func bar(_ done: Int64, of expected: Int64) -> String {
        let fraction = expected > 0 ? min(1, Double(done) / Double(expected)) : 0
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        let percent = String(Int((fraction * 100).rounded(.down)))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled) + "] "
            + String(repeating: " ", count: 3 - percent.count) + percent + "%"
    }

    func finish(_ image: String, _ status: String) {
        let prefix = interactive ? "\r\u{1B}[K" : ""
        pending.withLock { pending in
            pending = nil
            FileHandle.standardOutput.write(Data("\(prefix)\(image): \(status)\n".utf8))
        }
    }

    func summary(images: Int, failures: Int) {
        let (total, _, _) = state.add(0)
        print("prefetched \(images - failures) of \(images) images, \(total.byteCountText) read")
    }

}

/// Bytes so far, the start, and when the line was last drawn.
final class ProgressState: Sendable {
    private struct Counts {
        var total: Int64 = 0
        var started = ContinuousClock.now
        var drawn = ContinuousClock.now - .seconds(1)
    }

    private let counts = Mutex(Counts())

    /// Adds bytes; says whether to redraw (at most ten times a second).
    func add(_ bytes: Int) -> (total: Int64, rate: Double, draw: Bool) {
        counts.withLock { counts in
            counts.total += Int64(bytes)
            let now = ContinuousClock.now
            let elapsed = max(0.001, (now - counts.started).totalSeconds)
            let draw = now - counts.drawn >= .milliseconds(100)
            if draw { counts.drawn = now }
            return (counts.total, Double(counts.total) / elapsed, draw)
        }
    }
}
