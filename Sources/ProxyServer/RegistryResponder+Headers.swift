import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OCI
import RegistryClient

extension RegistryResponder {
    static let apiVersion = HTTPField.Name("Docker-Distribution-API-Version")!
    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!

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
        let headers = apiHeaders(contentType: "application/json")
        if method == .head {
            return Response(status: status, headers: headers)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: RegistryError.body([error]))))
    }

    /// A `Range` the upstream can be asked for: one `bytes=` range, well formed. Anything else is
    /// ignored, as RFC 9110 allows, and the whole blob is served.
    static func forwardableRange(_ header: String) -> BlobRangeRequest? {
        let value = header.trimmingCharacters(in: .whitespaces)
        guard value.hasPrefix("bytes=") else { return nil }
        let spec = value.dropFirst("bytes=".count)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count <= 18, parts[1].count <= 18,
            parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) }), !(parts[0].isEmpty && parts[1].isEmpty)
        else { return nil }
        if let first = Int64(parts[0]), let last = Int64(parts[1]), last < first { return nil }
        return BlobRangeRequest(header: "bytes=\(parts[0])-\(parts[1])")
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
