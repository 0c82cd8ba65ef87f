import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization

/// What the fake servers saw, for assertions.
final class Recorder: Sendable {
    private let entries = Mutex<[String]>([])

    func record(_ entry: String) {
        entries.withLock { $0.append(entry) }
    }

    var all: [String] { entries.withLock { $0 } }
}

/// Runs a live Hummingbird server on a loopback port for the duration of `body`.
func withLiveServer<Result: Sendable>(
    _ configure: @escaping @Sendable (Router<BasicRequestContext>) -> Void,
    _ body: @escaping @Sendable (Int) async throws -> Result
) async throws -> Result {
    let router = Router()
    configure(router)
    let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    return try await application.test(.live) { client in
        try await body(client.port!)
    }
}
