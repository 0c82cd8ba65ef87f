import ArchwayTesting
import Foundation
import NIOCore
import RegistryClient

/// A real docker-registry behind a fault-injecting proxy, and the archway binary in front with
/// `registry.test` pointing at the proxy.
struct CacheEnvironment {
    let upstream: UpstreamRegistry
    let proxy: FaultInjectingProxy
    let images: StandardImages

    func configuration(tagTTL: String = "5m") -> String {
        let yaml = """
            upstreams:
              - name: registry.test
                url: \(proxy.url)
            default-upstream: registry.test
            tag-ttl: \(tagTTL)

            """
        return yaml
    }

    /// The blob's file in Archway's storage, whether or not it exists.
    static func storedBlob(_ archway: ArchwayProcess, _ digest: String) -> URL {
        let hex = digest.dropFirst("sha256:".count)
        return archway.storage.appendingPathComponent("blobs/sha256/\(hex.prefix(2))/\(hex)")
    }

    /// The files in Archway's `tmp/`.
    static func temporaryFiles(_ archway: ArchwayProcess) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: archway.storage.appendingPathComponent("tmp").path)) ?? []
    }

    /// GETs a URL with libcurl and returns status, headers and the body's digest.
    static func fetch(_ url: String, headers: RegistryClient.UpstreamHeaders = [:]) async throws -> (
        status: Int, headers: RegistryClient.UpstreamHeaders, digest: String, size: Int64
    ) {
        let response = try await CurlTransport().send(UpstreamRequest(url: url, headers: headers))
        var hasher = StreamingSHA256()
        for try await chunk in response.body {
            chunk.withUnsafeReadableBytes { hasher.update($0) }
        }
        return (response.status, response.headers, hasher.finalizeDigest(), hasher.byteCount)
    }
}

func withCacheEnvironment<T>(isolation: isolated (any Actor)? = #isolation, _ body: (CacheEnvironment) async throws -> T) async throws -> T
{
    try await withUpstreamRegistry { upstream in
        let images = try await StandardImages.seed(upstream)
        let proxy = try await FaultInjectingProxy.start(upstream: upstream.url)
        do {
            let result = try await body(CacheEnvironment(upstream: upstream, proxy: proxy, images: images))
            await proxy.stop()
            return result
        } catch {
            await proxy.stop()
            throw error
        }
    }
}
