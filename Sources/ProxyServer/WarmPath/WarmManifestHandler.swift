import CoreMetrics
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import OCI
import Proxy
import Synchronization

/// What the warm path needs of the HTTP surface: the registry, who may pull without
/// credentials, the request metrics and the access log it shares with the full path.
/// A class: the handlers of every connection share it, and a struct this size was copied
/// whole (a value-witness call per field) on each warm answer.
public final class WarmManifestPath: Sendable {
    let registry: PullThroughRegistry
    let authentication: ClientAuthentication?
    let metrics: RequestMetrics
    let logger: Logger
    /// The listener serves registry reads (not the `admin-listen` one).
    let servesRegistry: Bool
    /// Bytes of warm answers not yet written, across listeners.
    let budget: WarmAnswerBudget

    init(
        registry: PullThroughRegistry, authentication: ClientAuthentication?, metrics: RequestMetrics, logger: Logger,
        servesRegistry: Bool, budget: WarmAnswerBudget = .shared
    ) {
        self.registry = registry
        self.authentication = authentication
        self.metrics = metrics
        self.logger = logger
        self.servesRegistry = servesRegistry
        self.budget = budget
    }

    /// The answer to a warm manifest GET or HEAD, or nil for anything the full path must see:
    /// another endpoint or method, a name that does not parse or route, credentials to check
    /// (or a request that needs them), percent-encoded queries, an answer not in memory.
    /// `upstream`: the upstream the connection is bound to (a proxy connection), else the
    /// request's `ns` or path names it.
    func answer(_ request: HTTPRequest, remote: SocketAddress?, upstream: String?) -> (ManifestAnswer, UpstreamRouter.Route)? {
        // Anything percent-encoded is left to the full path's parsers, as is an `ns` given twice.
        // Bytes, not characters: this runs on every request.
        guard servesRegistry, request.method == .get || request.method == .head, let target = request.path,
            !target.utf8.contains(UInt8(ascii: "%"))
        else { return nil }
        let mark = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let question = mark.map { target[target.utf8.index(after: $0)...] } ?? ""
        let path = mark.map { target[..<$0] } ?? target[...]
        guard path.utf8.starts(with: "/v2/".utf8), case .manifest(let name, let reference)? = try? RegistryRoute(path: String(path)) else {
            return nil
        }
        let namespace = upstream ?? Self.namespace(in: question)
        guard let route = try? registry.resolve(name, namespace: namespace) else { return nil }
        if let authentication {
            // Only what an anonymous client may read; a request with credentials goes the
            // full path, which checks them.
            guard request.headerFields[.authorization] == nil, authentication.admitsAnonymous(toPrivate: route.isPrivate) else {
                return nil
            }
        }
        let client = Client(
            address: remote?.ipAddress, userAgent: request.headerFields[.userAgent],
            platformHeader: request.headerFields[RegistryController.platformHeader])
        guard
            let answer = registry.warmManifest(
                // The raw values: the reduction is remembered by them, so a repeated Accept
                // costs one lookup (splitting it first was a tenth of a warm answer's CPU).
                route, reference, accepting: request.headerFields[values: .accept], client: client)
        else { return nil }
        return (answer, route)
    }

    /// The answer's cost, taken from the budget; nil when the budget has no room for it (the
    /// full path answers).
    func reserve(_ answer: ManifestAnswer, for request: HTTPRequest) -> Int? {
        let cost = WarmAnswerBudget.cost(body: request.method == .head ? 0 : answer.manifest.bytes.count)
        return budget.reserve(cost) ? cost : nil
    }

    /// The `ns` query parameter: nil when absent; `""` when given twice (no upstream has an
    /// empty name, so such a request routes nowhere here and takes the full path).
    static func namespace(in query: Substring) -> String? {
        let values = query.split(separator: "&").filter { $0.hasPrefix("ns=") }.map { String($0.dropFirst(3)) }
        return values.count > 1 ? "" : values.first
    }
}

/// What a connection's warm handler keeps, over HTTP/1.1 and HTTP/2 alike: the shared path, the
/// upstream the connection is bound to (a proxy tunnel's), the client's address (read once:
/// `remoteAddress` asks the kernel) and this second's `Date`.
struct WarmConnection {
    let path: WarmManifestPath
    let upstream: String?
    /// The access log's `proto`.
    let proto: String
    var remote: SocketAddress?
    private var date = HTTPDate()

    init(path: WarmManifestPath, upstream: String?, proto: String) {
        self.path = path
        self.upstream = upstream
        self.proto = proto
    }

    func answer(_ request: HTTPRequest) -> (ManifestAnswer, UpstreamRouter.Route)? {
        path.answer(request, remote: remote, upstream: upstream)
    }

    /// The full path's headers for `answer`, dated.
    mutating func headers(for answer: ManifestAnswer) -> HTTPFields {
        var headers = RegistryController.manifestHeaders(answer, warn: false)
        headers[.date] = date.now()
        return headers
    }

    /// Counts and logs a warm answer as the full path does its own.
    func served(
        _ request: HTTPRequest, answer: ManifestAnswer, route: UpstreamRouter.Route, headers: HTTPFields, started: ContinuousClock.Instant
    ) {
        path.metrics.record(route: "manifest", method: request.method, status: 200, elapsed: ContinuousClock.now - started)
        WarmManifestHandler.answered.increment()
        guard path.logger.logLevel <= .info else { return }
        AccessLine(
            logger: path.logger, method: request.method.rawValue, path: String((request.path ?? "").prefix { $0 != "?" }),
            client: remote, userAgent: request.headerFields[.userAgent], upstream: route.upstreamName, proto: proto, via: upstream,
            started: started
        )
        .write(
            status: 200, headers: headers, bytes: request.method == .head ? 0 : Int64(answer.manifest.bytes.count), end: .complete,
            error: nil)
    }
}

/// Bounds the memory warm HTTP/2 answers hold while they wait for the client's flow-control
/// window, process-wide: each costs its body plus 1 KiB from the moment it is written until the
/// write completes. Past the limit a stream takes the full path, whose writers wait for the
/// client, so a client that opens streams without reading cannot make Archway hold a copy of a
/// 4 MiB manifest for each. (HTTP/1.1 needs no budget: the warm path there answers only while
/// the connection is writable.)
final class WarmAnswerBudget: Sendable {
    static let shared = WarmAnswerBudget(limit: 64 << 20)
    let limit: Int
    private let held = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// What an answer with `body` bytes costs.
    static func cost(body: Int) -> Int { body + 1024 }

    /// Takes `bytes` from the budget, or nothing (false) when they would exceed it.
    func reserve(_ bytes: Int) -> Bool {
        if held.add(bytes, ordering: .relaxed).newValue > limit {
            held.subtract(bytes, ordering: .relaxed)
            return false
        }
        return true
    }

    func release(_ bytes: Int) {
        held.subtract(bytes, ordering: .relaxed)
    }

    /// What is held now.
    var inUse: Int { held.load(ordering: .relaxed) }
}

/// Answers warm manifest requests on the event loop, before Hummingbird's async pipeline: the
/// same bytes and headers, access-log line and metrics, without a task or a thread hop. It
/// sits after Hummingbird's connection-state handler (which sees every request and response,
/// so idle timeouts, `Connection: close` and graceful shutdown apply), and answers only when
/// no earlier request of the connection is still being answered by the full path (responses
/// leave in order).
final class WarmManifestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// `archway_warm_manifests_total`: requests this handler answered.
    static let answered = Counter(label: "archway_warm_manifests_total")
    private var connection: WarmConnection
    /// Requests handed to the full path whose response has not ended.
    private var inFlight = 0
    /// The rest of a request answered here (a body, the end) is dropped.
    private var draining = false

    init(path: WarmManifestPath, upstream: String?) {
        connection = WarmConnection(path: path, upstream: upstream, proto: "http/1.1")
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection.remote = context.channel.remoteAddress
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            let started = ContinuousClock.now
            // Not while earlier answers wait for the client: the full path's writer waits for
            // it, so a client that asks without reading cannot pile up answers here.
            if inFlight == 0, context.channel.isWritable, let (answer, route) = connection.answer(request) {
                respond(answer, route: route, to: request, started: started, context: context)
                draining = true
                return
            }
            inFlight += 1
            context.fireChannelRead(data)
        case .body, .end:
            if draining {
                if case .end = unwrapInboundIn(data) { draining = false }
                return
            }
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), inFlight > 0 { inFlight -= 1 }
        context.write(data, promise: promise)
    }

    private func respond(
        _ answer: ManifestAnswer, route: UpstreamRouter.Route, to request: HTTPRequest, started: ContinuousClock.Instant,
        context: ChannelHandlerContext
    ) {
        var headers = connection.headers(for: answer)
        // The client asked to close after this answer (Hummingbird's full path does the same).
        let closing = Self.asksToClose(request)
        if closing { headers[.connection] = "close" }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .ok, headerFields: headers))), promise: nil)
        let isHead = request.method == .head
        if !isHead {
            context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: answer.manifest.bytes))), promise: nil)
        }
        if closing {
            // Closed once the answer has left (a close right away would drop what the socket
            // did not take yet).
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        connection.served(request, answer: answer, route: route, headers: headers, started: started)
    }

    /// `Connection: close`, in any case and among other options.
    static func asksToClose(_ request: HTTPRequest) -> Bool {
        request.headerFields[values: .connection].contains { value in
            value.split(separator: ",").contains { $0.trimmingWhitespace.lowercased() == "close" }
        }
    }
}

extension Channel {
    /// Puts the warm path right after Hummingbird's connection-state handler of an HTTP/1.1
    /// pipeline. Must run on the event loop, once the pipeline is set up.
    func installWarmPath(_ path: WarmManifestPath?, upstream: String? = nil) throws {
        guard let path else { return }
        let state = try pipeline.syncOperations.handler(type: HTTPConnectionStateHandler.self)
        try pipeline.syncOperations.addHandler(WarmManifestHandler(path: path, upstream: upstream), position: .after(state))
    }
}
