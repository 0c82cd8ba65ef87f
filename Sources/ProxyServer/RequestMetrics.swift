import CoreMetrics
import HTTPTypes
import Hummingbird
import OCI
import Synchronization

/// Counts every request by route, method and status, and times it to its response head.
struct RequestMetricsMiddleware: MiddlewareProtocol {
    let metrics: RequestMetrics

    func handle(
        _ request: Request, context: ArchwayRequestContext, next: (Request, ArchwayRequestContext) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        let route = (try? context.endpoint.get())?.name ?? "invalid"
        metrics.record(route: route, method: request.method, status: response.status.code, elapsed: ContinuousClock.now - started)
        return response
    }
}

/// `archway_requests_total{route,method,status}` and `archway_request_duration_seconds{route}`,
/// each made once: making a metric asks the metrics backend under its lock with freshly built
/// labels, and this runs on every request. Methods outside HTTP's usual set count as `OTHER`,
/// so a client inventing methods cannot grow the label space.
final class RequestMetrics: Sendable {
    private struct Key: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]
    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])

    func record(route: String, method: HTTPRequest.Method, status: Int, elapsed: Duration) {
        let methodName = Self.knownMethods.contains(method.rawValue) ? method.rawValue : "OTHER"
        let key = Key(route: route, method: methodName, status: status)
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "archway_requests_total", dimensions: [("route", route), ("method", methodName), ("status", String(status))])
            counters[key] = counter
            return counter
        }
        counter.increment()
        let timer = timers.withLock { timers in
            if let timer = timers[route] { return timer }
            let timer = Timer(label: "archway_request_duration_seconds", dimensions: [("route", route)])
            timers[route] = timer
            return timer
        }
        timer.recordNanoseconds(elapsed.totalNanoseconds)
    }
}
