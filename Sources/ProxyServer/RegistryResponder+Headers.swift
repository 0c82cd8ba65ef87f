import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OCI
import RegistryClient

extension RegistryResponder {
    static let apiVersion = HTTPField.Name("Docker-Distribution-API-Version")!
    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!
    static let cacheStatus = HTTPField.Name("X-Cache")!
    static let platformHeader = HTTPField.Name("Archway-Platform")!
    static let warningHeader = HTTPField.Name("Warning")!

    static func apiHeaders(contentType: String) -> HTTPFields {
        [apiVersion: "registry/2.0", .contentType: contentType]
    }

    static func manifestHeaders(_ descriptor: Descriptor) -> HTTPFields {
        var headers = apiHeaders(contentType: descriptor.mediaType.rawValue)
        headers[contentDigest] = descriptor.digest.description
        headers[.contentLength] = String(descriptor.size)
        headers[.eTag] = "\"\(descriptor.digest)\""
        return headers
    }

    /// The spec's error body with the status its code calls for. A HEAD gets the status only.
    static func errorResponse(_ error: RegistryError, method: HTTPRequest.Method, status: HTTPResponse.Status? = nil) -> Response {
        let status = status ?? HTTPResponse.Status(code: error.status)
        var headers = apiHeaders(contentType: "application/json")
        // A rate-limited upstream's wait is passed on, so clients back off as long as it asked.
        if error.code == .tooManyRequests, let wait = error.detail, !wait.isEmpty, wait.allSatisfy(\.isNumber) {
            headers[.retryAfter] = wait
        }
        if method == .head {
            return Response(status: status, headers: headers)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: RegistryError.body([error]))))
    }

    /// A body that announces a length but sends nothing: the answer to a HEAD.
    static func emptyBody(length: Int?) -> ResponseBody {
        ResponseBody(contentLength: length) { writer in try await writer.finish(nil) }
    }
}
