import ArchwayTesting
import Foundation
import Testing

/// A 1 GiB blob streams through Archway without Archway holding it in memory.
@Suite(.serialized) struct LargeBlobTests {
    static let size: Int64 = 1 << 30
    static let memoryLimit = 100 << 20

    @Test func aGigabyteBlobPassesThroughInBoundedMemory() async throws {
        try await withPullThrough { env in
            try await withTemporaryDirectory { directory in
                let file = try makeLargeBlobFile(size: Self.size, seed: 42, in: directory)
                let blob = try await RegistryUploader(env.upstream).pushBlob(repository: "test/large", file: file)
                try FileManager.default.removeItem(at: file)
                let url = "\(env.archway.url)/v2/registry.test/test/large/blobs/\(blob.digest)"
                let result = try await run(
                    "/bin/bash", ["-c", "set -o pipefail; curl -sf '\(url)' | sha256sum"], timeout: .seconds(600)
                ).requireSuccess()
                #expect("sha256:" + (result.stdout.split(separator: " ").first.map(String.init) ?? "") == blob.digest)
                let peak = try #require(env.archway.peakResidentMemoryBytes())
                print("archway peak resident memory after a 1 GiB blob: \(peak >> 20) MiB")
                #expect(peak < Self.memoryLimit, "peak RSS \(peak >> 20) MiB")
            }
        }
    }
}
