import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OCI
import Proxy

/// Registry errors answer for themselves: the spec's JSON body with the status their code calls
/// for (a HEAD gets the status and headers only).
extension RegistryError: HTTPResponseError {
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }

    public var headers: HTTPFields {
        var headers = RegistryController.apiHeaders(contentType: "application/json")
        // A rate-limited upstream's wait is passed on, so clients back off as long as it asked.
        if code == .tooManyRequests, let wait = detail, !wait.isEmpty, wait.allSatisfy(\.isNumber) {
            headers[.retryAfter] = wait
        }
        return headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        if request.method == .head { return Response(status: status, headers: headers) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: RegistryError.body([self]))))
    }
}

/// A request without the credentials it needs: `401` with a Basic challenge.
struct Unauthorized: HTTPResponseError {
    let message: String

    var status: HTTPResponse.Status { .unauthorized }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try RegistryError(.unauthorized, message).response(from: request, context: context)
        response.headers[.wwwAuthenticate] = #"Basic realm="archway""#
        return response
    }
}

/// Turns whatever the controllers throw into the answer the client gets. This is the one place
/// where errors become wire errors: below it everything throws ``RegistryError`` or its own
/// typed errors. An error nobody meant for the client (SQLite, storage) is logged with the
/// request's id and answered `500` with a generic message: no internal text leaves.
struct ErrorMiddleware: MiddlewareProtocol {
    func handle(
        _ request: Request, context: ArchwayRequestContext, next: (Request, ArchwayRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            return try error.response(from: request, context: context)
        } catch let error as RangeNotSatisfiable {
            var response = try RegistryError(.rangeInvalid, "the range starts past the end of the \(error.length)-byte blob")
                .response(from: request, context: context)
            response.headers[.contentRange] = "bytes */\(error.length)"
            return response
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as any DependencyFailure where error.failedDependency != nil {
            context.logger.error("dependency failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            let dependency = error.failedDependency ?? ""
            return try RegistryError(.unavailable, "\(dependency) is unavailable (request \(context.id)); the server's log has the details")
                .response(from: request, context: context)
        } catch {
            context.logger.error("internal error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            var response = try RegistryError(.unavailable, "internal error (request \(context.id)); the server's log has the details")
                .response(from: request, context: context)
            response.status = .internalServerError
            return response
        }
    }
}
