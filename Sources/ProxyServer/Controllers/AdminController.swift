import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OCI
import Proxy
import Synchronization

/// The operator's endpoints: `/_archway/health`, `/_archway/ready`, `/_archway/mismatches`,
/// `/metrics`, and the operator's page (`/_archway/`, its JSON under `/_archway/api/`).
struct AdminController: Sendable {
    let registry: PullThroughRegistry
    let advisor: MismatchAdvisor?
    /// Renders `/metrics` (Prometheus text); nil: no metrics endpoint.
    let metricsText: (@Sendable () async -> String)?
    /// The mismatch report, made again at most every 15 s (its suggestions ask upstreams for
    /// tag lists), and each page of images at most every 2 s (a catalog query over every tag).
    let reports = ShortLivedCache<Int, [MismatchReport]>(lifetime: 15, capacity: 1)
    let images = ShortLivedCache<Int, OperatorSnapshot.Images>(lifetime: 2)

    func respond(to request: Request, endpoint: RegistryRoute) async throws -> Response {
        switch endpoint {
        case .health:
            return Self.json(#"{"status":"ok"}"#)
        case .ready:
            let problems = await registry.readinessProblems()
            if problems.isEmpty { return Self.json(#"{"status":"ready"}"#) }
            return Self.json(
                #"{"status":"unready","problems":["# + problems.map(\.jsonQuoted).joined(separator: ",") + "]}",
                status: .serviceUnavailable)
        case .metrics:
            guard let metricsText else { throw RegistryError(.notFound, "no metrics endpoint") }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: await metricsText()))
            )
        case .mismatches:
            return try await mismatches(request)
        case .operatorPage:
            let data = try await pageData(request)
            return Self.respond(OperatorPage.render(data), type: "text/html; charset=utf-8")
        case .operatorAsset(.css):
            return Self.respond(OperatorAssets.css, type: "text/css; charset=utf-8", cacheable: true)
        case .operatorAsset(.script):
            return Self.respond(OperatorAssets.script, type: "text/javascript; charset=utf-8", cacheable: true)
        case .operatorAPI(let section):
            return try await api(section, request)
        default:
            throw RegistryError(.notFound, "no such route: \(request.uri.path)")
        }
    }

    /// `GET /_archway/mismatches?since=24h`: the mismatch report as JSON.
    private func mismatches(_ request: Request) async throws -> Response {
        guard let advisor else { throw RegistryError(.notFound, "mismatch reports are not enabled") }
        var since: Date?
        if let text = request.uri.queryParameters["since"] {
            guard let window = Duration(parsing: String(text)) else {
                throw RegistryError(.unsupported, "since must be a duration such as 24h, 30m or 7d, not '\(text)'", status: 400)
            }
            since = Date().addingTimeInterval(-window.totalSeconds)
        }
        let body = try MismatchReport.json(try await advisor.report(since: since))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// `?page=N` of the images section: a whole number from 1, else 400.
    private static func page(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters["page"] else { return 1 }
        guard let page = Int(String(text)), page >= 1, page <= 1_000_000 else {
            throw RegistryError(.unsupported, "page must be a whole number from 1, not '\(text)'", status: 400)
        }
        return page
    }

    private func pageData(_ request: Request) async throws -> OperatorPageData {
        let page = try Self.page(request)
        return OperatorPageData(
            overview: await registry.overview(), upstreams: registry.upstreamsStatus(), images: try await imagesPage(page),
            policies: registry.policiesStatus(), mismatches: await mismatchReports().map(OperatorSnapshot.Mismatch.init), now: Date())
    }

    private func mismatchReports() async -> [MismatchReport] {
        guard let advisor else { return [] }
        if let fresh = reports.fresh(0) { return fresh }
        let computed = (try? await advisor.report(since: nil)) ?? []
        reports.store(computed, for: 0)
        return computed
    }

    private func imagesPage(_ page: Int) async throws -> OperatorSnapshot.Images {
        if let fresh = images.fresh(page) { return fresh }
        let computed = try await registry.images(page: page)
        images.store(computed, for: page)
        return computed
    }

    /// `/_archway/api/<section>`: the page's data as JSON (ISO 8601 times).
    private func api(_ section: OperatorSection, _ request: Request) async throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body: Data
        switch section {
        case .overview: body = try encoder.encode(await registry.overview())
        case .upstreams: body = try encoder.encode(registry.upstreamsStatus())
        case .images: body = try encoder.encode(try await imagesPage(try Self.page(request)))
        case .policies: body = try encoder.encode(registry.policiesStatus())
        case .mismatches: body = try MismatchReport.json(await mismatchReports())
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// A page or one of its files, with headers that keep it to itself: no framing, no
    /// sniffing, scripts and styles only from here.
    private static func respond(_ text: String, type: String, cacheable: Bool = false) -> Response {
        var headers: HTTPFields = [
            .contentType: type,
            .init("Content-Security-Policy")!:
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            .init("X-Content-Type-Options")!: "nosniff",
            .init("Referrer-Policy")!: "no-referrer",
        ]
        headers[.cacheControl] = cacheable ? "max-age=300" : "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Answers kept a short while: the page refreshes every 2 s, and an open page's flood of
/// requests must not turn into a flood of catalog queries and upstream tag lists.
final class ShortLivedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let lifetime: TimeInterval
    let capacity: Int
    private let entries = Mutex<[Key: (at: Date, value: Value)]>([:])

    init(lifetime: TimeInterval, capacity: Int = 16) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func fresh(_ key: Key, now: Date = Date()) -> Value? {
        entries.withLock { entries in
            guard let entry = entries[key], now.timeIntervalSince(entry.at) < lifetime else { return nil }
            return entry.value
        }
    }

    func store(_ value: Value, for key: Key, now: Date = Date()) {
        entries.withLock { entries in
            if entries[key] == nil, entries.count >= capacity {
                entries = entries.filter { now.timeIntervalSince($0.value.at) < lifetime }
                if entries.count >= capacity, let oldest = entries.min(by: { $0.value.at < $1.value.at }) { entries[oldest.key] = nil }
            }
            entries[key] = (now, value)
        }
    }
}
