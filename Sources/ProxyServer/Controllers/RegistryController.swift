import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OCI
import Proxy

/// The registry API's reads: `/v2/`, manifests, blobs and tag lists, answered from
/// ``PullThroughRegistry`` for the repository route the responder resolved. Writes are refused.
struct RegistryController: Sendable {
    static let apiVersion = HTTPField.Name("Docker-Distribution-API-Version")!
    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!
    static let cacheStatus = HTTPField.Name("X-Cache")!
    static let platformHeader = HTTPField.Name("Archway-Platform")!
    static let warningHeader = HTTPField.Name("Warning")!
    /// Responses whose body the kernel sent.
    static let sendfileResponses = Counter(label: "archway_sendfile_responses_total")

    let registry: PullThroughRegistry
    /// Whether a pull that does not fit the client's platform gets a `Warning: 299` header.
    let warnMismatches: Bool
    /// How many responses may stream a body through memory at once; nil: no bound.
    let streamingBudget: StreamingBudget?
    /// A streamed response whose client takes nothing for this long is ended.
    let writeTimeout: TimeAmount
    /// The fleet's shared secret (`replica.secret-file`); nil: no replica may stream from this one.
    var peerSecret: [UInt8]? = nil

    func respond(to request: Request, endpoint: RegistryRoute, context: ArchwayRequestContext) async throws -> Response {
        switch endpoint {
        case .base:
            return Response(
                status: .ok, headers: Self.apiHeaders(contentType: "application/json"), body: .init(byteBuffer: ByteBuffer(string: "{}")))
        case .manifest(_, let reference):
            return try await manifest(request, reference: reference, context: context)
        case .blob(_, let digest):
            return try await blob(request, digest: digest, context: context)
        case .tags(let name):
            return try await tags(request, name: name, context: context)
        case .referrers(_, let digest):
            return try await referrers(request, subject: digest, context: context)
        case .upload:
            throw RegistryError(.unsupported, "this registry is a read-only mirror: uploads are not supported")
        case .notFound, .health, .ready, .metrics, .mismatches, .peerFill, .operatorPage, .operatorAPI, .operatorAsset:
            throw RegistryError(.notFound, "no such route: \(request.uri.path)")
        }
    }

    private func manifest(_ request: Request, reference: ManifestReference, context: ArchwayRequestContext) async throws -> Response {
        let accept = Self.acceptValues(request.headers)
        let client = Client(
            address: context.remoteAddress?.ipAddress,
            userAgent: request.headers[.userAgent],
            platformHeader: request.headers[Self.platformHeader]
        )
        let answer = try await registry.manifest(try context.route(), reference, accepting: accept, client: client)
        let headers = Self.manifestHeaders(answer, warn: warnMismatches)
        let bytes = answer.manifest.bytes
        if request.method == .head {
            return Response(status: .ok, headers: headers, body: Self.emptyBody(length: bytes.count))
        }
        if bytes.count <= Self.streamChunkSize {
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        // A large manifest (up to 4 MiB) is streamed like a blob, from the bytes the cache
        // shares: a client that never reads it holds a chunk, not a copy, and counts against the
        // streaming budget.
        return try streamed(status: .ok, headers: headers, length: bytes.count, context: context) { chunkSize in
            ByteChunks(bytes: bytes, size: chunkSize)
        }
    }

    private func blob(_ request: Request, digest: Digest, context: ArchwayRequestContext) async throws -> Response {
        // Inside a proxy connection the client can reach no other host than the one it
        // CONNECTed to (the bucket would be refused): the blob is served here.
        if request.method == .get, InterceptedSession.current == nil, let url = try await registry.blobRedirect(try context.route(), digest)
        {
            var headers: HTTPFields = [Self.apiVersion: "registry/2.0", .location: url, .contentLength: "0"]
            headers[Self.contentDigest] = digest.description
            headers[Self.cacheStatus] = CacheStatus.hit.rawValue
            return Response(status: .temporaryRedirect, headers: headers, body: Self.emptyBody(length: 0))
        }
        let answer = try await registry.blob(try context.route(), digest, rangeHeader: request.headers[.range])
        return try await blobResponse(answer, digest: digest, request: request, context: context)
    }

    /// Another replica streaming this one's download of `digest` (or the content, once stored).
    /// Without the fleet's secret, or with a token that is not valid for this digest now, the
    /// endpoint does not exist: 404, the same answer as for a replica that has no such download.
    func peerFill(_ request: Request, digest: Digest, context: ArchwayRequestContext) async throws -> Response {
        guard let peerSecret, PeerToken.verify(request.headers[.authorization], secret: peerSecret, digest: digest, now: Date()) else {
            throw RegistryError(.notFound, "no such route: \(request.uri.path)")
        }
        guard let answer = try await registry.peerDownload(digest) else {
            throw RegistryError(.blobUnknown, "no download of \(digest) here")
        }
        return try await blobResponse(answer, digest: digest, request: request, context: context)
    }

    /// A blob answer on the wire: by the kernel when it can, else streamed within the budget.
    private func blobResponse(_ answer: BlobAnswer, digest: Digest, request: Request, context: ArchwayRequestContext) async throws
        -> Response
    {
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
        if let length, let job = await SendfileHandler.queue(answer.file, length: Int64(length), on: context.channel) {
            // Counted once the kernel sent it: a download still running is not served yet.
            job.delivered.futureResult.whenSuccess { answer.countSent($0) }
            Self.sendfileResponses.increment()
            context.exchange.sentByKernel(job.delivered.futureResult)
            headers[SendfileHandler.markerField] = String(job.id)
            return Response(status: status, headers: headers, body: Self.emptyBody(length: length))
        }
        // Streamed through Archway's memory (TLS, HTTP/2, no length yet): bounded per response
        // and in total.
        return try streamed(status: status, headers: headers, length: length, context: context) { chunkSize in
            answer.body(chunkSize: chunkSize)
        }
    }

    /// A body streamed through Archway's memory in chunks, within the streaming budget (`503`
    /// when it is spent) and the write timeout.
    private func streamed<Body: AsyncSequence<ByteBuffer, any Error> & Sendable>(
        status: HTTPResponse.Status, headers: HTTPFields, length: Int?, context: ArchwayRequestContext,
        body makeBody: (_ chunkSize: Int) -> Body
    ) throws -> Response {
        let permit: StreamingBudget.Permit
        if let streamingBudget {
            guard let granted = streamingBudget.acquire() else {
                throw RegistryError(.unavailable, "too many downloads are streaming; retry in a moment")
            }
            permit = granted
        } else {
            permit = StreamingBudget.unlimited
        }
        let (body, channel, writeTimeout, exchange) = (makeBody(permit.chunkSize), context.channel, writeTimeout, context.exchange)
        exchange.streams()
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(contentLength: length) { writer in
                do {
                    try await Self.stream(body, to: &writer, channel: channel, stallTimeout: writeTimeout, exchange: exchange)
                    try await writer.finish(nil)
                    exchange.end(.complete, error: nil)
                } catch {
                    exchange.end(ResponseEnd(after: error), error: error)
                    throw error
                }
                withExtendedLifetime(permit) {}
            }
        )
    }

    /// `OCI-Filters-Applied`: which query filters the answer honoured.
    static let filtersApplied = HTTPField.Name("OCI-Filters-Applied")!

    private func referrers(_ request: Request, subject: Digest, context: ArchwayRequestContext) async throws -> Response {
        let artifactType = request.uri.queryParameters["artifactType"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let answer = try await registry.referrers(try context.route(), subject: subject, artifactType: artifactType)
        let body = answer.index.canonicalJSON()
        var headers = Self.apiHeaders(contentType: MediaType.ociIndex.rawValue)
        headers[.contentLength] = String(body.count)
        headers[Self.cacheStatus] = answer.cache.rawValue
        if answer.filtered { headers[Self.filtersApplied] = "artifactType" }
        if request.method == .head { return Response(status: .ok, headers: headers, body: Self.emptyBody(length: body.count)) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func tags(_ request: Request, name: RepositoryName, context: ArchwayRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        var count: Int?
        if let n = query["n"] {
            guard let value = Int(n), value >= 0 else {
                throw RegistryError(.paginationNumberInvalid, "n must be a non-negative integer, not '\(n)'")
            }
            count = value
        }
        let last = query["last"].map(String.init)
        let page = try await registry.tags(try context.route(), name: name, count: count, last: last)
        var headers = Self.apiHeaders(contentType: "application/json")
        if page.hasMore, let lastTag = page.tags.last {
            var link = "/v2/\(name)/tags/list?last=\(lastTag)"
            if let count { link += "&n=\(count)" }
            if let namespace = query["ns"] { link += "&ns=\(namespace)" }
            headers[.init("Link")!] = "<\(link)>; rel=\"next\""
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(page)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// A manifest answer's headers (the warm path's too: ``WarmManifestHandler``).
    static func manifestHeaders(_ answer: ManifestAnswer, warn: Bool) -> HTTPFields {
        var headers = HTTPFields()
        headers.reserveCapacity(8)
        forEachManifestHeader(answer, warn: warn) { name, value in headers.append(HTTPField(name: name, value: value)) }
        return headers
    }

    /// A manifest answer's headers one by one, each once: for ``manifestHeaders(_:warn:)`` and
    /// for the HTTP/1.1 warm path, which writes NIO's header type without making HTTPFields.
    static func forEachManifestHeader(_ answer: ManifestAnswer, warn: Bool, _ body: (HTTPField.Name, String) -> Void) {
        let digest = answer.manifest.digest.description
        body(apiVersion, "registry/2.0")
        body(.contentType, answer.manifest.mediaType.rawValue)
        body(contentDigest, digest)
        body(.contentLength, String(answer.manifest.bytes.count))
        body(.eTag, "\"\(digest)\"")
        body(cacheStatus, answer.cache.rawValue)
        if warn, let warning = answer.warning { body(warningHeader, warning) }
    }

    /// The `Accept` values of a request, one per entry, however the client split them.
    static func acceptValues(_ headers: HTTPFields) -> [String] {
        headers[values: .accept].flatMap { $0.split(separator: ",") }.map { String($0.trimmingWhitespace) }.filter { !$0.isEmpty }
    }

    static func apiHeaders(contentType: String) -> HTTPFields {
        [apiVersion: "registry/2.0", .contentType: contentType]
    }

    /// A body that announces a length but sends nothing: the answer to a HEAD.
    static func emptyBody(length: Int?) -> ResponseBody {
        ResponseBody(contentLength: length) { writer in try await writer.finish(nil) }
    }
}
