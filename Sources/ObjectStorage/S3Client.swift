import Foundation
import NIOCore
import OCI
import RegistryClient

/// Where a bucket is: an S3 endpoint (`http://127.0.0.1:7480`, `https://s3.eu-west-1.amazonaws.com`),
/// its region, and whether the bucket goes in the path (Ceph, MinIO) or in the host name (AWS).
public struct S3Location: Sendable, Hashable {
    /// `http` or `https`.
    public let scheme: String
    /// `host[:port]`, as sent in `Host`.
    public let host: String
    public let region: String
    public let bucket: String
    public let pathStyle: Bool

    /// Parses `endpoint` (`scheme://host[:port]`, nothing after); nil when it is not one.
    public init?(endpoint: String, region: String, bucket: String, pathStyle: Bool) {
        guard let separator = endpoint.range(of: "://") else { return nil }
        let scheme = endpoint[..<separator.lowerBound].lowercased()
        var host = String(endpoint[separator.upperBound...])
        if host.hasSuffix("/") { host.removeLast() }
        guard scheme == "http" || scheme == "https", !host.isEmpty,
            host.allSatisfy({ $0.isLetter || $0.isNumber || "-.:[]".contains($0) }), !host.hasPrefix(":")
        else { return nil }
        guard Self.isValidBucket(bucket) else { return nil }
        self.scheme = scheme
        self.host = host
        self.region = region
        self.bucket = bucket
        self.pathStyle = pathStyle
    }

    /// S3's rule for bucket names: 3-63 of lowercase letters, digits, `-` and `.`, starting and
    /// ending with a letter or digit.
    public static func isValidBucket(_ name: String) -> Bool {
        let edges = name.first.map { $0.isLowercase || $0.isNumber } == true && name.last.map { $0.isLowercase || $0.isNumber } == true
        return (3...63).contains(name.count) && edges
            && name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "." }
    }

    /// The `Host` of requests for the bucket.
    var requestHost: String { pathStyle ? host : "\(bucket).\(host)" }

    /// The unencoded path of `key` (the bucket itself when empty).
    func path(_ key: String) -> String {
        if pathStyle { return key.isEmpty ? "/\(bucket)" : "/\(bucket)/\(key)" }
        return "/\(key)"
    }
}

/// An S3 error answer (`<Error><Code>NoSuchKey</Code>…`), or an answer S3 never gives.
public struct S3Error: Error, Hashable, CustomStringConvertible {
    public let operation: String
    public let status: Int
    /// S3's error code (`NoSuchUpload`, `SignatureDoesNotMatch`), empty when the answer had none.
    public let code: String
    public let message: String

    public var description: String {
        "S3 \(operation): \(status)\(code.isEmpty ? "" : " \(code)")\(message.isEmpty ? "" : ": \(message)")"
    }
}

/// One multipart upload in progress, as S3 lists it.
public struct S3Upload: Sendable, Hashable {
    public let key: String
    public let uploadID: String
    public let initiated: Date?
}

/// One object, as S3 lists it.
public struct S3Object: Sendable, Hashable {
    public let key: String
    public let size: Int64
}

/// The S3 operations Archway uses, signed with Signature V4 and sent over our libcurl transport.
///
/// Every answer is hostile until checked: error bodies and listings are read up to a limit, a
/// `200` that carries an `<Error>` (CompleteMultipartUpload can) is an error, and lengths are
/// parsed strictly. Small requests sign their payload; upload parts are sent `UNSIGNED-PAYLOAD`
/// (their bytes are the blob's, checked against its digest whenever they are read back).
public struct S3Client: Sendable {
    public let location: S3Location
    let signer: SignatureV4
    let transport: any HTTPTransport
    let now: @Sendable () -> Date
    /// The most Archway reads of an answer that is not an object (XML).
    static let answerLimit = 8 << 20

    public init(
        location: S3Location, credentials: AWSCredentials, transport: any HTTPTransport = CurlTransport(),
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.location = location
        self.signer = SignatureV4(credentials: credentials, region: location.region)
        self.transport = transport
        self.now = now
    }

    // MARK: - The bucket

    /// Creates the bucket; an existing one of ours is fine.
    public func createBucket() async throws {
        let response = try await send(.put, "", operation: "CreateBucket", body: ByteBuffer())
        if response.status == 409, response.code == "BucketAlreadyOwnedByYou" { return }
        try response.requireSuccess()
    }

    /// Whether the bucket answers to our keys (`HEAD /bucket`): the readiness probe.
    public func checkBucket() async throws {
        try await send(.head, "", operation: "HeadBucket", timeout: .seconds(5)).requireSuccess()
    }

    // MARK: - Objects

    /// The length of an object; nil when there is none.
    public func length(of key: String) async throws -> Int64? {
        let response = try await send(.head, key, operation: "HeadObject")
        if response.status == 404 { return nil }
        try response.requireSuccess()
        guard let length = response.headers["Content-Length"].flatMap({ Int64($0) }), length >= 0 else {
            throw S3Error(operation: "HeadObject", status: response.status, code: "", message: "no valid Content-Length")
        }
        return length
    }

    /// An object's bytes from `range` (all when nil), streamed; nil when there is no object.
    public func get(_ key: String, range: ClosedRange<Int64>? = nil) async throws -> (length: Int64?, body: ByteStream)? {
        var headers: UpstreamHeaders = [:]
        if let range { headers.add("Range", "bytes=\(range.lowerBound)-\(range.upperBound)") }
        let response = try await perform(
            request(.get, key, headers: headers, body: nil, signedPayload: false, timeout: nil), operation: "GetObject")
        if response.status == 404 { return nil }
        guard response.status == 200 || (range != nil && response.status == 206) else {
            throw await error(response, operation: "GetObject")
        }
        return (response.headers["Content-Length"].flatMap { Int64($0) }, response.body)
    }

    /// Stores small content whole. `sha256`, the body's SHA-256 in hex when the caller already
    /// knows it (content stored by its digest), spares hashing it again to sign it.
    public func put(_ key: String, _ body: ByteBuffer, sha256: String? = nil) async throws {
        try await send(.put, key, operation: "PutObject", body: body, payloadHash: sha256).requireSuccess()
    }

    /// Deletes an object; a missing one is fine.
    public func delete(_ key: String) async throws {
        let response = try await send(.delete, key, operation: "DeleteObject")
        if response.status == 404 { return }
        try response.requireSuccess()
    }

    /// Every object whose key starts with `prefix`, page by page (`pageSize` keys a page; S3's
    /// default and most is 1000).
    public func objects(prefix: String, pageSize: Int? = nil) async throws -> [S3Object] {
        var objects: [S3Object] = []
        var token: String?
        var seen: Set<String> = []
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let pageSize { query.append(("max-keys", String(pageSize))) }
            if let token { query.append(("continuation-token", token)) }
            let response = try await send(.get, "", query: query, operation: "ListObjectsV2")
            try response.requireSuccess()
            for entry in XMLFields.elements("Contents", in: response.text[...]) {
                guard let key = XMLFields.first("Key", in: entry), let size = XMLFields.first("Size", in: entry).flatMap({ Int64($0) })
                else { continue }
                objects.append(S3Object(key: key, size: size))
            }
            let truncated = XMLFields.first("IsTruncated", in: response.text[...]) == "true"
            let next = truncated ? XMLFields.first("NextContinuationToken", in: response.text[...]) : nil
            // A store that hands back a token it gave before (or an empty one) would have this
            // loop forever.
            guard let next, !next.isEmpty, seen.insert(next).inserted else { break }
            token = next
        } while token != nil
        return objects
    }

    // MARK: - Multipart uploads

    /// Starts a multipart upload; returns its id.
    public func createMultipartUpload(_ key: String) async throws -> String {
        let response = try await send(.post, key, query: [("uploads", "")], operation: "CreateMultipartUpload", body: ByteBuffer())
        try response.requireSuccess()
        guard let id = XMLFields.first("UploadId", in: response.text[...]), !id.isEmpty else {
            throw S3Error(operation: "CreateMultipartUpload", status: response.status, code: "", message: "no UploadId in the answer")
        }
        return id
    }

    /// Uploads one part (numbered from 1; every part but the last at least 5 MiB); returns its ETag.
    public func uploadPart(_ key: String, uploadID: String, number: Int, _ body: ByteBuffer) async throws -> String {
        let response = try await send(
            .put, key, query: [("partNumber", String(number)), ("uploadId", uploadID)], operation: "UploadPart", body: body,
            signedPayload: false, timeout: nil)
        try response.requireSuccess()
        guard let etag = response.headers["ETag"], !etag.isEmpty else {
            throw S3Error(operation: "UploadPart", status: response.status, code: "", message: "no ETag in the answer")
        }
        return etag
    }

    /// Makes the object from the parts: only now is it visible.
    public func completeMultipartUpload(_ key: String, uploadID: String, parts: [(number: Int, etag: String)]) async throws {
        let list = parts.map { "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(XMLFields.escape($0.etag))</ETag></Part>" }.joined()
        let body = ByteBuffer(string: "<CompleteMultipartUpload>\(list)</CompleteMultipartUpload>")
        // S3 may answer 200 and then fail in the body: only <CompleteMultipartUploadResult> is success.
        let response = try await send(
            .post, key, query: [("uploadId", uploadID)], operation: "CompleteMultipartUpload", body: body, timeout: .seconds(300))
        try response.requireSuccess()
        guard response.text.contains("CompleteMultipartUploadResult") else {
            throw S3Error(
                operation: "CompleteMultipartUpload", status: response.status, code: XMLFields.first("Code", in: response.text[...]) ?? "",
                message: XMLFields.first("Message", in: response.text[...]) ?? "the answer is not a result")
        }
    }

    /// Abandons an upload and frees its parts; an upload already gone is fine.
    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        let response = try await send(.delete, key, query: [("uploadId", uploadID)], operation: "AbortMultipartUpload")
        if response.status == 404 { return }
        try response.requireSuccess()
    }

    /// The uploads in progress whose key starts with `prefix`.
    public func multipartUploads(prefix: String) async throws -> [S3Upload] {
        var uploads: [S3Upload] = []
        var markers: (key: String, id: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.id)] }
            let response = try await send(.get, "", query: query, operation: "ListMultipartUploads")
            try response.requireSuccess()
            let text = response.text[...]
            for entry in XMLFields.elements("Upload", in: text) {
                guard let key = XMLFields.first("Key", in: entry), let id = XMLFields.first("UploadId", in: entry) else { continue }
                uploads.append(S3Upload(key: key, uploadID: id, initiated: XMLFields.first("Initiated", in: entry).flatMap(Self.parseDate)))
            }
            if XMLFields.first("IsTruncated", in: text) == "true", let key = XMLFields.first("NextKeyMarker", in: text),
                let id = XMLFields.first("NextUploadIdMarker", in: text), markers.map({ $0 != (key, id) }) ?? true
            {
                markers = (key, id)
            } else {
                markers = nil
            }
        } while markers != nil
        return uploads
    }

    // MARK: - Presigned URLs

    /// A URL that GETs `key` without credentials for `expires` seconds.
    public func presignedURL(_ key: String, expires: Int) -> String {
        let path = location.path(key)
        let signature = signer.presign(
            SignatureV4.Request(method: "GET", path: path, headers: [("Host", location.requestHost)]),
            payloadHash: SignatureV4.unsignedPayload,
            date: now(), expires: expires)
        return url(path: path, query: signature.query)
    }

    // MARK: - Requests

    /// An answer read whole (it is small: XML or nothing).
    struct Answer {
        let operation: String
        let status: Int
        let headers: UpstreamHeaders
        let text: String

        var code: String { XMLFields.first("Code", in: text[...]) ?? "" }

        func requireSuccess() throws {
            guard (200..<300).contains(status) else {
                throw S3Error(operation: operation, status: status, code: code, message: XMLFields.first("Message", in: text[...]) ?? "")
            }
        }
    }

    private func send(
        _ method: UpstreamRequest.Method, _ key: String, query: [(String, String)] = [], operation: String, body: ByteBuffer? = nil,
        signedPayload: Bool = true, payloadHash: String? = nil, timeout: Duration? = .seconds(30)
    ) async throws -> Answer {
        let response = try await perform(
            request(method, key, query: query, body: body, signedPayload: signedPayload, payloadHash: payloadHash, timeout: timeout),
            operation: operation)
        do {
            let bytes = try await response.body.collect(upTo: Self.answerLimit)
            return Answer(operation: operation, status: response.status, headers: response.headers, text: String(buffer: bytes))
        } catch let error as TransportError {
            throw S3Error(operation: operation, status: 0, code: "Unreachable", message: error.message)
        } catch let error as BodyTooLarge {
            throw S3Error(operation: operation, status: response.status, code: "", message: "an answer \(error)")
        }
    }

    /// Sends a request; a failure to talk to the endpoint is an ``S3Error`` too (status 0), so
    /// it is never taken for a registry's.
    private func perform(_ request: UpstreamRequest, operation: String) async throws -> UpstreamResponse {
        do {
            return try await transport.send(request)
        } catch let error as TransportError {
            throw S3Error(operation: operation, status: 0, code: "Unreachable", message: "\(location.host): \(error.message)")
        }
    }

    private func error(_ response: UpstreamResponse, operation: String) async -> S3Error {
        let text = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
        return S3Error(
            operation: operation, status: response.status, code: XMLFields.first("Code", in: text[...]) ?? "",
            message: XMLFields.first("Message", in: text[...]) ?? "")
    }

    func request(
        _ method: UpstreamRequest.Method, _ key: String, query: [(String, String)] = [], headers extra: UpstreamHeaders = [:],
        body: ByteBuffer?, signedPayload: Bool = true, payloadHash known: String? = nil, timeout: Duration?
    ) -> UpstreamRequest {
        let path = location.path(key)
        let payloadHash =
            !signedPayload
            ? SignatureV4.unsignedPayload : known ?? Digest.sha256(Data((body ?? ByteBuffer()).readableBytesView)).encoded
        var fields: [(name: String, value: String)] = [("Host", location.requestHost)]
        for field in extra { fields.append((field.name, field.value)) }
        let signature = signer.sign(
            SignatureV4.Request(method: method.rawValue, path: path, query: query.map { ($0.0, $0.1) }, headers: fields),
            payloadHash: payloadHash, date: now())
        var headers = extra
        for (name, value) in signature.headers { headers.add(name, value) }
        return UpstreamRequest(
            method: method, url: url(path: path, query: query.map { ($0.0, $0.1) }), headers: headers, body: body, totalTimeout: timeout)
    }

    private func url(path: String, query: [(name: String, value: String)]) -> String {
        let encodedPath = path.split(separator: "/", omittingEmptySubsequences: false).map { SignatureV4.encode(String($0)) }.joined(
            separator: "/")
        let encodedQuery = query.map { "\(SignatureV4.encode($0.name))=\(SignatureV4.encode($0.value))" }.joined(separator: "&")
        return "\(location.scheme)://\(location.requestHost)\(encodedPath)\(encodedQuery.isEmpty ? "" : "?" + encodedQuery)"
    }

    /// `2026-11-30T10:42:56.000Z`.
    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
