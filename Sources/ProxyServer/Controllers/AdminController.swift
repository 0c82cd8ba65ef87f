import Foundation
import Hummingbird
import NIOCore
import OCI
import Proxy

/// The operator's endpoints: `/_archway/health`, `/_archway/ready`, `/_archway/mismatches` and
/// `/metrics`.
struct AdminController: Sendable {
    let registry: PullThroughRegistry
    let advisor: MismatchAdvisor?
    /// Renders `/metrics` (Prometheus text); nil: no metrics endpoint.
    let metricsText: (@Sendable () async -> String)?

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

    private static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
