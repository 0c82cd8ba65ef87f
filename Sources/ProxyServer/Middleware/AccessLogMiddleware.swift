import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OCI
import Proxy
import Synchronization

/// What a response did on the wire, for the access log: the body bytes that left and how the
/// response ended.
///
/// A response whose body is in memory ends when the middleware has it. A body the controller
/// streams, or hands to the kernel (`sendfile`), is reported by the controller as it goes
/// (``streams()``, ``add(_:)``, ``end(_:error:)``); one that never got to start (the client left
/// before the head) ends as `client-gone` when the exchange is let go.
public final class Exchange: Sendable {
    typealias EndHandler = @Sendable (_ bytes: Int64, _ end: ResponseEnd, _ error: (any Error)?) -> Void

    private struct State {
        var bytes: Int64 = 0
        var isStreamed = false
        var handler: EndHandler?
        /// The end, once reached: reported to the handler when it is there, or kept until it is.
        var end: (ResponseEnd, (any Error)?)?
        var reported = false
    }
    private let state = Mutex(State())

    /// The controller writes the body as it goes (or the kernel does) and reports its end.
    func streams() {
        state.withLock { $0.isStreamed = true }
    }

    var isStreamed: Bool { state.withLock { $0.isStreamed } }

    func add(_ bytes: Int) {
        state.withLock { $0.bytes += Int64(bytes) }
    }

    /// The body went out as a file the kernel sent; the future says how many bytes it sent. The
    /// end is reported off the event loop (the log line is a write).
    func sentByKernel(_ delivery: EventLoopFuture<Int64>) {
        streams()
        delivery.whenComplete { result in
            Task {
                switch result {
                case .success(let sent):
                    self.add(Int(sent))
                    self.end(.complete, error: nil)
                case .failure(let error):
                    self.end(ResponseEnd(after: error), error: error)
                }
            }
        }
    }

    /// The response ended; only the first end counts.
    func end(_ end: ResponseEnd, error: (any Error)?) {
        let report: (EndHandler, Int64)? = state.withLock { state in
            guard state.end == nil else { return nil }
            state.end = (end, error)
            return state.handler.map { handler in
                state.reported = true
                return (handler, state.bytes)
            }
        }
        if let (handler, bytes) = report { handler(bytes, end, error) }
    }

    /// Calls `handler` once, when the response has ended (at once if it has).
    func whenEnded(_ handler: @escaping EndHandler) {
        let report: (Int64, ResponseEnd, (any Error)?)? = state.withLock { state in
            state.handler = handler
            guard let (end, error) = state.end, !state.reported else { return nil }
            state.reported = true
            return (state.bytes, end, error)
        }
        if let (bytes, end, error) = report { handler(bytes, end, error) }
    }

    deinit {
        // A streamed body that never started or finished: the client went before it could.
        let report: (EndHandler, Int64)? = state.withLock { state in
            guard state.isStreamed, state.end == nil, let handler = state.handler else { return nil }
            return (handler, state.bytes)
        }
        if let (handler, bytes) = report { handler(bytes, .clientGone, nil) }
    }
}

/// How a response ended, as the access log says it.
enum ResponseEnd: String {
    /// Every byte of the body left.
    case complete
    /// The connection went away (or stalled and was closed) before the end.
    case clientGone = "client-gone"
    /// The body could not be completed (a download that failed its digest, a storage error).
    case failed

    /// Whether an error while sending the body means the client left or the body failed.
    init(after error: any Error) {
        switch error {
        case is ChannelError, is IOError, is CancellationError: self = .clientGone
        default: self = .failed
        }
    }
}

/// The access log: one line per request, written when the response has ended, with the bytes
/// that actually left, the time to the last byte and whether the client stayed to the end.
///
/// In-memory bodies are logged when the middleware has the response (Hummingbird writes them
/// head, body and end in one go; wrapping them would cost that); streamed ones when their
/// controller reports the end.
struct AccessLogMiddleware: MiddlewareProtocol {
    func handle(
        _ request: Request, context: ArchwayRequestContext, next: (Request, ArchwayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard context.logger.logLevel <= .info else { return try await next(request, context) }
        let line = AccessLine(request: request, context: context, started: ContinuousClock.now)
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            line.write(status: nil, headers: [:], bytes: 0, end: .clientGone, error: error)
            throw error
        }
        let (status, headers) = (response.status.code, response.headers)
        if context.exchange.isStreamed {
            context.exchange.whenEnded { bytes, end, error in
                line.write(status: status, headers: headers, bytes: bytes, end: end, error: error)
            }
        } else {
            let bytes = request.method == .head ? 0 : Int64(response.body.contentLength ?? 0)
            line.write(status: status, headers: headers, bytes: bytes, end: .complete, error: nil)
        }
        return response
    }
}

/// One request's access line, written once its response has ended.
struct AccessLine: Sendable {
    let logger: Logger
    let method: String
    let path: String
    let client: String
    let userAgent: String?
    let upstream: String?
    /// `h2` for a request on an HTTP/2 stream (a child of its connection, itself a child of the
    /// listening socket), else `http/1.1` (the connection, a child of the listening socket).
    let proto: String
    /// `proxy <host>` for a request inside a proxy connection.
    let via: String?
    let started: ContinuousClock.Instant

    init(request: Request, context: ArchwayRequestContext, started: ContinuousClock.Instant) {
        self.init(
            logger: context.logger, method: request.method.rawValue, path: request.uri.path, client: context.remoteAddress,
            userAgent: request.headers[.userAgent], upstream: (try? context.repository?.get())?.upstreamName,
            // A stream's channel has the connection as its parent, which has the listener's.
            proto: context.channel.parent?.parent == nil ? "http/1.1" : "h2", via: InterceptedSession.current?.upstream, started: started)
    }

    init(
        logger: Logger, method: String, path: String, client: SocketAddress?, userAgent: String?, upstream: String?, proto: String,
        via: String?, started: ContinuousClock.Instant
    ) {
        self.logger = logger
        self.method = method
        self.path = path
        self.client = client?.ipAddress ?? ""
        self.userAgent = userAgent
        self.upstream = upstream
        self.proto = proto
        self.via = via.map { "proxy \($0)" }
        self.started = started
    }

    func write(status: Int?, headers: HTTPFields, bytes: Int64, end: ResponseEnd, error: (any Error)?) {
        var metadata: Logger.Metadata = [
            "method": "\(method)",
            "path": "\(path)",
            "status": "\(status.map(String.init) ?? "-")",
            "bytes": "\(bytes)",
            "ms": "\((ContinuousClock.now - started).totalMilliseconds)",
            "end": "\(end.rawValue)",
            "client": "\(client)",
            "proto": "\(proto)",
        ]
        if let cache = headers[RegistryController.cacheStatus] { metadata["cache"] = "\(cache)" }
        if let upstream { metadata["upstream"] = "\(upstream)" }
        if let userAgent { metadata["user_agent"] = "\(userAgent)" }
        if let via { metadata["via"] = "\(via)" }
        if let error, end == .failed { metadata["error"] = "\(error)" }
        logger.info("request", metadata: metadata)
    }
}
