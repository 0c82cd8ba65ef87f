import ArchwayTesting
import Foundation
import NIOCore
import RegistryClient
import Testing

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

/// A client's GET, read whole: status, `X-Cache`, digest of the body, bytes, or the error that
/// broke the transfer.
struct StreamedPull: Sendable, CustomStringConvertible {
    var status = 0
    var cache: String?
    var digest = ""
    var size: Int64 = 0
    var broken: String?

    var description: String { "\(status) \(cache ?? "-") \(digest) \(size) bytes\(broken.map { ", broken: \($0)" } ?? "")" }
}

/// GETs `url` with libcurl, counting its first byte in `firstBytes`; a broken transfer is
/// recorded, not thrown.
func streamedPull(_ url: String, firstBytes: Tally) async -> StreamedPull {
    var result = StreamedPull()
    do {
        let response = try await CurlTransport().send(UpstreamRequest(url: url))
        result.status = response.status
        result.cache = response.headers["X-Cache"]
        var hasher = StreamingSHA256()
        var first = true
        for try await chunk in response.body {
            if first {
                first = false
                firstBytes.add()
            }
            chunk.withUnsafeReadableBytes { hasher.update($0) }
        }
        result.digest = hasher.finalizeDigest()
        result.size = hasher.byteCount
    } catch {
        result.broken = "\(error)"
    }
    return result
}

/// Pulls `image` with containerd through `mirror` for linux/arm64 and linux/amd64, checking each
/// gets its architecture, and removes it after each.
func pullEachPlatform(_ image: String, with containerd: Containerd, mirror: String, in hosts: URL) async throws {
    try Containerd.writeHostsToml(directory: hosts, registry: "registry.test", server: "http://127.0.0.1:9", mirror: mirror)
    for (platform, arch) in [("linux/arm64", "arm64"), ("linux/amd64", "amd64")] {
        let pull = try await containerd.pull(image, hostsDir: hosts, platform: platform)
        #expect(pull.succeeded, "\(pull)")
        #expect(try await containerd.imageConfigArchitecture(image, platform: platform) == arch)
        try await containerd.removeImage(image)
    }
}
