import ArchwayTesting
import Foundation
import Testing

/// `archway prefetch` on a real terminal: tmux runs it in a pane of its own (a private server on a
/// socket of this test, stopped by that socket), the pane is read while a blob is held half way
/// and after the end.
@Suite(.serialized) struct PrefetchDisplayTests {
    @Test func theProgressBarMovesAndTheSummaryEndsTheRun() async throws {
        let tmux = try requireProgram("tmux")
        try await withCacheEnvironment { env in
            let layer = try await withTemporaryDirectory { (directory: URL) async throws -> BlobRef in
                try await RegistryUploader(env.upstream).pushBlob(
                    repository: "test/big", file: try makeLargeBlobFile(size: 8 << 20, seed: 31, in: directory))
            }
            // An image of one 8 MiB layer (its bytes are never unpacked here).
            let uploader = RegistryUploader(env.upstream)
            let config = try await uploader.pushBlob(
                repository: "test/big", data: Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8))
            let manifest = Data(
                """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
                "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config.digest)","size":\(config.size)},\
                "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer.digest)","size":\(layer.size)}]}
                """.utf8)
            let manifestDigest = try await uploader.pushManifest(
                repository: "test/big", reference: "1.0", bytes: manifest, mediaType: "application/vnd.oci.image.manifest.v1+json")
            try await withTemporaryDirectory(prefix: "awt") { directory in
                let file = directory.appendingPathComponent("archway.yaml")
                try ("storage:\n  path: \(directory.path)/storage\n" + env.configuration()).write(
                    to: file, atomically: true, encoding: .utf8)
                let socket = directory.appendingPathComponent("tmux.sock").path
                func pane() async -> String {
                    (try? await run(tmux, ["-S", socket, "capture-pane", "-p", "-t", "prefetch"]))?.stdout ?? ""
                }
                // The blob stops after 3 MiB until released: the bar must show part of the image.
                env.proxy.setBlobFault(.holdAfter(3 << 20))
                let command = "\(try ArchwayProcess.binaryPath()) prefetch --config \(file.path) registry.test/test/big:1.0; sleep 120"
                try await run(tmux, ["-S", socket, "new-session", "-d", "-s", "prefetch", "-x", "200", "-y", "10", command])
                    .requireSuccess()
                defer { Task { _ = try? await run(tmux, ["-S", socket, "kill-server"]) } }
                do {
                    try await waitUntil(timeout: .seconds(60), "a partly filled bar") {
                        let text = await pane()
                        return text.contains("registry.test/test/big:1.0 [single-platform] [#") && text.contains("-]")
                    }
                } catch {
                    Issue.record("the pane showed:\n\(await pane())")
                    throw error
                }
                let held = await pane()
                #expect(held.contains("%") && held.contains("MiB/"), "\(held)")
                env.proxy.release()
                try await waitUntil(timeout: .seconds(60), "the summary") { await pane().contains("prefetched 1 of 1 images") }
                let done = await pane()
                #expect(done.contains("registry.test/test/big:1.0: 1 image(s), \(manifestDigest)"), "\(done)")
                #expect(!done.contains("-]"), "the bar is replaced by the result: \(done)")
                _ = try? await run(tmux, ["-S", socket, "kill-server"])
            }
        }
    }
}
