import CoreMetrics
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
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
    func answer<Request: WarmRequestHead>(_ request: Request, remote: SocketAddress?, upstream: String?)
        -> (ManifestAnswer, UpstreamRouter.Route)?
    {
        // Anything percent-encoded is left to the full path's parsers, as is an `ns` given twice.
        // Bytes, not characters: this runs on every request.
        guard servesRegistry, request.isGetOrHead, let target = request.target, !target.utf8.contains(UInt8(ascii: "%")) else {
            return nil
        }
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
            guard !request.hasAuthorization, authentication.admitsAnonymous(toPrivate: route.isPrivate) else {
                return nil
            }
        }
        let client = Client(address: remote?.ipAddress, userAgent: request.userAgent, platformHeader: request.platformHeader)
        guard
            let answer = registry.warmManifest(
                // The raw values: the reduction is remembered by them, so a repeated Accept
                // costs one lookup (splitting it first was a tenth of a warm answer's CPU).
                route, reference, accepting: request.acceptValues, client: client)
        else { return nil }
        return (answer, route)
    }

    /// The answer's cost, taken from the budget; nil when the budget has no room for it (the
    /// full path answers).
    func reserve(_ answer: ManifestAnswer, for request: HTTPRequest) -> Int? {
        let cost = WarmAnswerBudget.cost(body: request.isHead ? 0 : answer.manifest.bytes.count)
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

    func answer<Request: WarmRequestHead>(_ request: Request) -> (ManifestAnswer, UpstreamRouter.Route)? {
        path.answer(request, remote: remote, upstream: upstream)
    }

    /// The full path's headers for `answer`, dated.
    mutating func headers(for answer: ManifestAnswer) -> HTTPFields {
        var headers = RegistryController.manifestHeaders(answer, warn: false)
        headers[.date] = date.now()
        return headers
    }

    /// The same as NIO's HTTP/1 header type, made directly.
    mutating func http1Headers(for answer: ManifestAnswer) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(8)
        RegistryController.forEachManifestHeader(answer, warn: false) { name, value in headers.add(name: name.rawName, value: value) }
        headers.add(name: "Date", value: date.now())
        return headers
    }

    /// Counts and logs a warm answer as the full path does its own.
    func served<Request: WarmRequestHead>(
        _ request: Request, answer: ManifestAnswer, route: UpstreamRouter.Route, started: ContinuousClock.Instant
    ) {
        path.metrics.record(route: "manifest", method: request.isHead ? .head : .get, status: 200, elapsed: ContinuousClock.now - started)
        WarmManifestHandler.answered.increment()
        guard path.logger.logLevel <= .info else { return }
        AccessLine(
            logger: path.logger, method: request.isHead ? "HEAD" : "GET", path: String((request.target ?? "").prefix { $0 != "?" }),
            client: remote, userAgent: request.userAgent, upstream: route.upstreamName, proto: proto, via: upstream, started: started
        )
        .write(
            status: 200, headers: [RegistryController.cacheStatus: answer.cache.rawValue],
            bytes: request.isHead ? 0 : Int64(answer.manifest.bytes.count), end: .complete, error: nil)
    }
}

/// What the warm path reads of a request head: HTTP/1.1's (NIO's `HTTPRequestHead`, below the
/// HTTP-types codec) and HTTP/2's (converted from the header block) alike.
protocol WarmRequestHead {
    var isGetOrHead: Bool { get }
    var isHead: Bool { get }
    /// The request target: path and query.
    var target: String? { get }
    var hasAuthorization: Bool { get }
    var userAgent: String? { get }
    /// ``RegistryController/platformHeader``.
    var platformHeader: String? { get }
    /// Every `Accept` field's raw value.
    var acceptValues: [String] { get }
}

extension HTTPRequest: WarmRequestHead {
    var isGetOrHead: Bool { method == .get || method == .head }
    var isHead: Bool { method == .head }
    var target: String? { path }
    var hasAuthorization: Bool { headerFields[.authorization] != nil }
    var userAgent: String? { headerFields[.userAgent] }
    var platformHeader: String? { headerFields[RegistryController.platformHeader] }
    var acceptValues: [String] { headerFields[values: .accept] }
}

extension HTTPRequestHead: WarmRequestHead {
    var isGetOrHead: Bool { method == .GET || method == .HEAD }
    var isHead: Bool { method == .HEAD }
    var target: String? { uri }
    var hasAuthorization: Bool { headers.contains(name: "authorization") }
    var userAgent: String? { headers.first(name: "user-agent") }
    var platformHeader: String? { headers.first(name: RegistryController.platformHeader.canonicalName) }
    var acceptValues: [String] { headers["accept"] }
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

/// Answers warm manifest requests on the event loop, before the HTTP-types codec and
/// Hummingbird's async pipeline: the same bytes and headers, access-log line and metrics,
/// without a task, a thread hop or a conversion of the request. It sits right after
/// ``HTTP1ConnectionHandler``, which sees its answers as it sees the full path's (request
/// timeout, `Connection: close`, graceful shutdown), and answers only when no earlier request of
/// the connection is still being answered by the full path (responses leave in order) and the
/// connection is writable.
final class WarmManifestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

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
        _ answer: ManifestAnswer, route: UpstreamRouter.Route, to request: HTTPRequestHead, started: ContinuousClock.Instant,
        context: ChannelHandlerContext
    ) {
        let headers = connection.http1Headers(for: answer)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.manifest.bytes)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        connection.served(request, answer: answer, route: route, started: started)
    }
}
