import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import OCI
import Proxy
import RegistryClient

/// The HTTP surface of the mirror: `/v2/` reads, errors in the spec's JSON, writes refused.
///
/// This is the one place where errors become wire errors; below it everything throws
/// ``RegistryError`` or its own typed errors.
public struct RegistryResponder: HTTPResponder {
    public typealias Context = ArchwayRequestContext

    let registry: PullThroughRegistry
    /// Whether a pull that does not fit the client's platform gets a `Warning: 299` header.
    let warnMismatches: Bool

    let advisor: MismatchAdvisor?
    /// Renders `/metrics` (Prometheus text); nil: no metrics endpoint.
    let metricsText: (@Sendable () async -> String)?
    /// Who may pull; nil: everyone.
    let authentication: ClientAuthentication?
    /// How many responses may stream a body through memory at once; nil: no bound.
    let streamingBudget: StreamingBudget?
    /// A streamed response whose client takes nothing for this long is ended.
    let writeTimeout: TimeAmount
    let requestMetrics = RequestMetrics()

    public init(
        registry: PullThroughRegistry,
        warnMismatches: Bool = true,
        advisor: MismatchAdvisor? = nil,
        metricsText: (@Sendable () async -> String)? = nil,
        authentication: ClientAuthentication? = nil,
        streamingBudget: StreamingBudget? = nil,
        writeTimeout: TimeAmount = .seconds(60)
    ) {
        self.authentication = authentication
        self.streamingBudget = streamingBudget
        self.writeTimeout = writeTimeout
        self.registry = registry
        self.warnMismatches = warnMismatches
        self.advisor = advisor
        self.metricsText = metricsText
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let parsed = Result { () throws(RegistryError) in try RegistryRoute(path: request.uri.path) }
        let route = try? parsed.get()
        let response: Response
        do {
            response = try await self.route(request, parsed, context: context)
        } catch let error as RegistryError {
            response = Self.errorResponse(error, method: request.method)
        } catch let error as Unauthorized {
            var refusal = Self.errorResponse(RegistryError(.unauthorized, error.message), method: request.method)
            refusal.headers[.wwwAuthenticate] = #"Basic realm="archway""#
            response = refusal
        } catch let error as RangeNotSatisfiable {
            var failure = Self.errorResponse(
                RegistryError(.rangeInvalid, "the range starts past the end of the \(error.length)-byte blob"),
                method: request.method
            )
            failure.headers[.contentRange] = "bytes */\(error.length)"
            response = failure
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            context.logger.error("internal error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            response = Self.errorResponse(
                // The details (paths, SQL) are for the log, not for whoever asked.
                RegistryError(.unavailable, "internal error; the server's log has the details"), method: request.method,
                status: .internalServerError
            )
        }
        let elapsed = ContinuousClock.now - started
        let routeName = route?.name ?? "invalid"
        requestMetrics.record(route: routeName, method: request.method, status: response.status.code, elapsed: elapsed)
        guard context.logger.logLevel <= .info else { return response }
        var metadata: Logger.Metadata = [
            "method": "\(request.method)",
            "path": "\(request.uri.path)",
            "status": "\(response.status.code)",
            "ms": "\(elapsed.totalMilliseconds)",
            "client": "\(context.remoteAddress?.ipAddress ?? "")",
        ]
        if let cache = response.headers[Self.cacheStatus] { metadata["cache"] = "\(cache)" }
        if let bytes = response.headers[.contentLength] { metadata["bytes"] = "\(bytes)" }
        if let upstream = upstreamName(route, request) { metadata["upstream"] = "\(upstream)" }
        if let agent = request.headers[.userAgent] { metadata["user_agent"] = "\(agent)" }
        context.logger.info("request", metadata: metadata)
        return response
    }

    /// Refuses a request that needs credentials it does not carry (`401` with a Basic challenge)
    /// or carries wrong ones. The operational endpoints stay open.
    private func authorize(_ request: Request, route: RegistryRoute, namespace: String?, client: String?) async throws {
        guard let authentication else { return }
        switch route {
        case .health, .ready, .metrics, .mismatches, .notFound: return
        default: break
        }
        let outcome = await authentication.authenticate(request.headers[.authorization], from: client)
        guard outcome != .invalid else { throw Unauthorized(message: "the credentials are not valid") }
        guard outcome != .throttled else {
            throw RegistryError(.tooManyRequests, "too many failed authentication attempts from this address; retry in a minute")
        }
        guard outcome == .anonymous else { return }
        if authentication.required { throw Unauthorized(message: "authentication required") }
        // Clients learn from the `/v2/` ping whether to send credentials (skopeo and podman send
        // them only after a challenge there); without credentials they still pull public content.
        if route == .base, authentication.hasUsers { throw Unauthorized(message: "credentials are accepted here") }
        switch route {
        case .manifest(let name, _), .blob(let name, _), .tags(let name):
            if (try? registry.router.route(name, namespace: namespace))?.isPrivate == true {
                throw Unauthorized(message: "this repository is served to authenticated clients only")
            }
        default: break
        }
    }

    /// The upstream a registry route goes to, for the access log.
    private func upstreamName(_ route: RegistryRoute?, _ request: Request) -> String? {
        let namespace = request.uri.queryParameters["ns"].map(String.init)
        switch route {
        case .manifest(let name, _), .blob(let name, _), .tags(let name):
            return (try? registry.router.route(name, namespace: namespace))?.upstream.name
        default:
            return nil
        }
    }

    private func route(_ request: Request, _ parsed: Result<RegistryRoute, RegistryError>, context: Context) async throws -> Response {
        switch request.method {
        case .get, .head: break
        default:
            throw RegistryError(.unsupported, "this registry is a read-only mirror: \(request.method) is not supported")
        }
        let namespace = request.uri.queryParameters["ns"].map(String.init)
        let route = try parsed.get()
        try await authorize(request, route: route, namespace: namespace, client: context.remoteAddress?.ipAddress)
        switch route {
        case .base:
            return Response(
                status: .ok, headers: Self.apiHeaders(contentType: "application/json"), body: .init(byteBuffer: ByteBuffer(string: "{}")))
        case .health:
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        case .mismatches:
            return try await mismatches(request)
        case .ready:
            let problems = await registry.readinessProblems()
            let body =
                problems.isEmpty
                ? #"{"status":"ready"}"# : #"{"status":"unready","problems":"# + "[\(problems.map(\.jsonQuoted).joined(separator: ","))]}"
            return Response(
                status: problems.isEmpty ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: body))
            )
        case .metrics:
            guard let metricsText else { throw RegistryError(.notFound, "no metrics endpoint") }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: await metricsText()))
            )
        case .manifest(let name, let reference):
            return try await manifest(request, context: context, name: name, reference: reference, namespace: namespace)
        case .blob(let name, let digest):
            return try await blob(request, name: name, digest: digest, namespace: namespace, channel: context.channel)
        case .tags(let name):
            return try await tags(request, name: name, namespace: namespace)
        case .upload:
            throw RegistryError(.unsupported, "this registry is a read-only mirror: uploads are not supported")
        case .notFound:
            throw RegistryError(.notFound, "no such route: \(request.uri.path)")
        }
    }

    private func manifest(_ request: Request, context: Context, name: RepositoryName, reference: ManifestReference, namespace: String?)
        async throws
        -> Response
    {
        let accept = request.headers[values: .accept].flatMap { $0.split(separator: ",") }
            .map { String($0.trimmingWhitespace) }
            .filter { !$0.isEmpty }
        let client = Client(
            address: context.remoteAddress?.ipAddress,
            userAgent: request.headers[.userAgent],
            platformHeader: request.headers[Self.platformHeader]
        )
        let answer = try await registry.manifest(name, reference, namespace: namespace, accepting: accept, client: client)
        var headers = Self.manifestHeaders(answer.manifest.descriptor)
        headers[Self.cacheStatus] = answer.cache.rawValue
        if warnMismatches, let warning = answer.warning { headers[Self.warningHeader] = warning }
        if request.method == .head {
            return Response(status: .ok, headers: headers, body: Self.emptyBody(length: answer.manifest.bytes.count))
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.manifest.bytes)))
    }

    private func blob(_ request: Request, name: RepositoryName, digest: Digest, namespace: String?, channel: any Channel) async throws
        -> Response
    {
        let answer = try await registry.blob(name, digest, namespace: namespace, rangeHeader: request.headers[.range])
        var headers = Self.apiHeaders(contentType: "application/octet-stream")
        headers[Self.contentDigest] = digest.description
        headers[.acceptRanges] = "bytes"
        headers[.eTag] = "\"\(digest)\""
        headers[Self.cacheStatus] = answer.cache.rawValue
        if let range = answer.range, let length = answer.length { headers[.contentRange] = range.contentRange(length: length) }
        let length = answer.contentLength.map { Int($0) }
        if let length { headers[.contentLength] = String(length) }
        let status: HTTPResponse.Status = answer.range == nil ? .ok : .partialContent
        if request.method == .head {
            return Response(status: status, headers: headers, body: Self.emptyBody(length: length))
        }
        if let length, let job = await Self.queueSendfile(answer.reader, length: Int64(length), on: channel) {
            answer.countSent(Int64(length))
            Self.sendfileResponses.increment()
            headers[SendfileHandler.markerField] = String(job)
            return Response(status: status, headers: headers, body: Self.emptyBody(length: length))
        }
        // Streamed through Archway's memory (TLS, HTTP/2, no length yet): bounded per response
        // and in total.
        let permit: StreamingBudget.Permit
        if let streamingBudget {
            guard let granted = streamingBudget.acquire() else {
                throw RegistryError(.unavailable, "too many downloads are streaming; retry in a moment")
            }
            permit = granted
        } else {
            permit = StreamingBudget.unlimited
        }
        let body = answer.body(chunkSize: Self.streamChunkSize)
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(contentLength: length) { writer in
                try await Self.stream(body, to: &writer, channel: channel, stallTimeout: writeTimeout)
                try await writer.finish(nil)
                withExtendedLifetime(permit) {}
            }
        )
    }

    /// `GET /_archway/mismatches?since=24h`: the mismatch report as JSON.
    private func mismatches(_ request: Request) async throws -> Response {
        guard let advisor else { throw RegistryError(.notFound, "mismatch reports are not enabled") }
        var since: Date?
        if let text = request.uri.queryParameters["since"] {
            guard let window = ReportWindow.parse(String(text)) else {
                throw RegistryError(.unsupported, "since must be a duration such as 24h, 30m or 7d, not '\(text)'", status: 400)
            }
            since = Date().addingTimeInterval(-window)
        }
        let body = try MismatchReport.json(try await advisor.report(since: since))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func tags(_ request: Request, name: RepositoryName, namespace: String?) async throws -> Response {
        let query = request.uri.queryParameters
        var count: Int?
        if let n = query["n"] {
            guard let value = Int(n), value >= 0 else {
                throw RegistryError(.paginationNumberInvalid, "n must be a non-negative integer, not '\(n)'")
            }
            count = value
        }
        let last = query["last"].map(String.init)
        let page = try await registry.tags(name, namespace: namespace, count: count, last: last)
        var headers = Self.apiHeaders(contentType: "application/json")
        if page.hasMore, let lastTag = page.tags.last {
            var link = "/v2/\(name)/tags/list?last=\(lastTag)"
            if let count { link += "&n=\(count)" }
            if let namespace { link += "&ns=\(namespace)" }
            headers[.init("Link")!] = "<\(link)>; rel=\"next\""
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(page)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// A request without the credentials it needs.
struct Unauthorized: Error {
    let message: String
}
