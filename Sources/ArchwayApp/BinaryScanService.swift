import Proxy
import ServiceLifecycle

/// The background scan of images' binaries, as a service: it ends with the server.
struct BinaryScanService: Service {
    let verifier: BinaryVerifier

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await verifier.run()
        }
    }
}
