/// Sends requests to upstreams over libcurl.
public protocol HTTPTransport: Sendable {
    /// Sends the request and returns once the response head arrived; the body streams after.
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse
}

/// The libcurl transport: every transfer runs on the shared libcurl thread; the body is read
/// with backpressure, so a gigabyte blob never sits in memory.
public struct CurlTransport: HTTPTransport {
    let options: CurlMulti.Options

    public init(connectTimeout: Duration = .seconds(10), stallTimeout: Duration = .seconds(30)) {
        self.options = CurlMulti.Options(connectTimeout: connectTimeout, stallTimeout: stallTimeout)
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let transfer = Transfer(request: request)
        let multi = CurlMulti.shared
        multi.start(transfer, options: options)
        let head: UpstreamResponseHead
        do {
            head = try await withTaskCancellationHandler {
                try await transfer.head()
            } onCancel: {
                if transfer.cancel() { multi.cancel(transfer) }
            }
        } catch {
            if transfer.cancel() { multi.cancel(transfer) }
            throw error
        }
        let lifetime = TransferLifetime(transfer: transfer)
        let body = ByteStream {
            return {
                try await lifetime.transfer.nextChunk { action in
                    switch action {
                    case .none: break
                    case .resume: multi.resume(lifetime.transfer)
                    case .cancel: multi.cancel(lifetime.transfer)
                    }
                }
            }
        }
        return UpstreamResponse(head: head, body: body)
    }
}

/// Cancels the transfer when the last reference to its body goes away unread.
final class TransferLifetime: Sendable {
    let transfer: Transfer

    init(transfer: Transfer) {
        self.transfer = transfer
    }

    deinit {
        if transfer.cancel() { CurlMulti.shared.cancel(transfer) }
    }
}
