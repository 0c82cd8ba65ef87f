import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OCI
import Proxy
import Synchronization

/// What a response did on the wire: the body bytes that left, by Hummingbird's writer or by the
/// kernel (`sendfile`), and how it ended.
public final class Exchange: Sendable {
    private struct State {
        var bytes: Int64 = 0
        var kernelDelivery: EventLoopFuture<Int64>?
    }
    private let state = Mutex(State())

    func add(_ bytes: Int) {
        state.withLock { $0.bytes += Int64(bytes) }
    }

    /// The body goes out as a file the kernel sends; the future says how many bytes it sent.
    func sentByKernel(_ delivery: EventLoopFuture<Int64>) {
        state.withLock { $0.kernelDelivery = delivery }
    }

    var bytes: Int64 { state.withLock { $0.bytes } }
    var kernelDelivery: EventLoopFuture<Int64>? { state.withLock { $0.kernelDelivery } }
}

/// How a response ended, as the access log says it.
enum ResponseEnd: String {
    /// Every byte of the body left.
    case complete
    /// The connection went away (or stalled and was closed) before the end.
    case clientGone = "client-gone"
    /// The body could not be completed (a download that failed its digest, a storage error).
    case failed
}

/// The access log: one line per request, written when the response has ended, with the bytes
/// that actually left, the time to the last byte and whether the client stayed to the end.
struct AccessLogMiddleware: MiddlewareProtocol {
    func handle(
        _ request: Request, context: ArchwayRequestContext, next: (Request, ArchwayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard context.logger.logLevel <= .info else { return try await next(request, context) }
        let started = ContinuousClock.now
        let line = AccessLine(request: request, context: context, started: started)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            line.write(status: nil, headers: [:], end: .clientGone, error: error)
            throw error
        }
        let (status, headers, exchange) = (response.status.code, response.headers, context.exchange)
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(CountingWriter(inner: writer, exchange: exchange))
            } catch {
                line.write(status: status, headers: headers, end: Self.end(after: error), error: error)
                throw error
            }
            guard let delivery = exchange.kernelDelivery else {
                line.write(status: status, headers: headers, end: .complete, error: nil)
                return
            }
            // Hummingbird's part is done; the kernel sends the file after it.
            delivery.whenComplete { result in
                switch result {
                case .success(let sent):
                    exchange.add(Int(sent))
                    line.write(status: status, headers: headers, end: .complete, error: nil)
                case .failure(let error):
                    line.write(status: status, headers: headers, end: Self.end(after: error), error: error)
                }
            }
        }
        return response
    }

    /// Whether an error writing the body means the client left or the body failed.
    static func end(after error: any Error) -> ResponseEnd {
        switch error {
        case is ChannelError, is IOError, is CancellationError: .clientGone
        default: .failed
        }
    }
}

/// One request's access line, written once its response has ended.
private struct AccessLine: Sendable {
    let logger: Logger
    let method: String
    let path: String
    let client: String
    let userAgent: String?
    let upstream: String?
    let exchange: Exchange
    let started: ContinuousClock.Instant

    init(request: Request, context: ArchwayRequestContext, started: ContinuousClock.Instant) {
        logger = context.logger
        method = request.method.rawValue
        path = request.uri.path
        client = context.remoteAddress?.ipAddress ?? ""
        userAgent = request.headers[.userAgent]
        upstream = (try? context.repository?.get())?.upstreamName
        exchange = context.exchange
        self.started = started
    }

    func write(status: Int?, headers: HTTPFields, end: ResponseEnd, error: (any Error)?) {
        var metadata: Logger.Metadata = [
            "method": "\(method)",
            "path": "\(path)",
            "status": "\(status.map(String.init) ?? "-")",
            "bytes": "\(exchange.bytes)",
            "ms": "\((ContinuousClock.now - started).totalMilliseconds)",
            "end": "\(end.rawValue)",
            "client": "\(client)",
        ]
        if let cache = headers[RegistryController.cacheStatus] { metadata["cache"] = "\(cache)" }
        if let upstream { metadata["upstream"] = "\(upstream)" }
        if let userAgent { metadata["user_agent"] = "\(userAgent)" }
        if let error, end == .failed { metadata["error"] = "\(error)" }
        logger.info("request", metadata: metadata)
    }
}

/// Counts the body bytes Hummingbird's writer takes.
private struct CountingWriter: ResponseBodyWriter {
    var inner: any ResponseBodyWriter
    let exchange: Exchange

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await inner.write(buffer)
        exchange.add(buffer.readableBytes)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await inner.finish(trailingHeaders)
    }
}
