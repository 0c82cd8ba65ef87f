import ArchwayTesting
import Foundation

/// A real docker-registry seeded with the standard images, and the real archway binary in front
/// of it: `registry.test` and `docker.io` route to the registry; the default upstream is a dead
/// address, so a pull only succeeds when Archway routed it by `ns` or path prefix.
struct PullThroughEnvironment {
    let upstream: UpstreamRegistry
    let images: StandardImages
    let archway: ArchwayProcess

    static func configuration(upstream: UpstreamRegistry) throws -> String {
        """
        upstreams:
          - name: nowhere.test
            url: http://127.0.0.1:\(try freeLoopbackPort())
          - name: registry.test
            url: \(upstream.url)
          - name: docker.io
            url: \(upstream.url)
        default-upstream: nowhere.test

        """
    }
}

func withPullThrough<T>(isolation: isolated (any Actor)? = #isolation, _ body: (PullThroughEnvironment) async throws -> T) async throws -> T
{
    try await withUpstreamRegistry { upstream in
        let images = try await StandardImages.seed(upstream)
        return try await withArchwayProcess(configuration: try PullThroughEnvironment.configuration(upstream: upstream)) { archway in
            try await body(PullThroughEnvironment(upstream: upstream, images: images, archway: archway))
        }
    }
}

/// Archway's configuration (without listen and storage) for one upstream, `registry.test`.
func singleUpstreamConfiguration(_ upstream: String, extra: String = "") -> String {
    """
    upstreams:
      - name: registry.test
        url: \(upstream)
    default-upstream: registry.test
    \(extra)
    """
}
