import Foundation
import OCI

/// Keys for an S3-compatible object store.
public struct AWSCredentials: Sendable, Hashable {
    public var accessKeyID: String
    public var secretAccessKey: String
    /// A temporary session's token (`x-amz-security-token`), if any.
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4: signs a request by its `Authorization` header, or as a presigned
/// URL, for one region and service (`s3`).
///
/// The request is taken as it will be sent: the path and query unencoded (the signer encodes
/// them once, as S3 wants: `sha256:` becomes `sha256%3A`), the headers in order, repeated names
/// allowed. Nothing here does I/O; the result says what to add to the request.
public struct SignatureV4: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a request whose body is not signed (S3 presigned URLs).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public let credentials: AWSCredentials
    public let region: String
    public let service: String
    /// Whether `.` and `..` segments and repeated slashes are removed from the path before
    /// signing: false for S3, whose keys may hold them.
    public let normalizesPath: Bool

    public init(credentials: AWSCredentials, region: String, service: String = "s3", normalizesPath: Bool = false) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.normalizesPath = normalizesPath
    }

    /// A request to sign.
    public struct Request: Sendable {
        public var method: String
        /// The path, unencoded: `/bucket/blobs/sha256:ab…`.
        public var path: String
        /// Query parameters, unencoded, in any order.
        public var query: [(name: String, value: String)]
        /// Header fields as they will be sent; `Host` among them.
        public var headers: [(name: String, value: String)]

        public init(method: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// What signing decided: the intermediate texts (for tests and debugging) and what to add.
    public struct Signature: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        /// The signature, lowercase hex.
        public var signature: String
        /// Header fields to add to the request (`X-Amz-Date`, `X-Amz-Content-SHA256`,
        /// `X-Amz-Security-Token`, `Authorization`), for signing by header.
        public var headers: [(name: String, value: String)]
        /// Query parameters to add, in order, for a presigned URL (the signature last).
        public var query: [(name: String, value: String)]
    }

    /// Signs by the `Authorization` header. `payloadHash` is the body's SHA-256 in hex (or
    /// ``unsignedPayload``); with `sendsPayloadHash` it is also sent as `x-amz-content-sha256`,
    /// which S3 requires. A session token is signed too unless `signsSessionToken` is false.
    public func sign(
        _ request: Request, payloadHash: String, sendsPayloadHash: Bool = true, date: Date, signsSessionToken: Bool = true
    ) -> Signature {
        let stamp = Self.timestamp(date)
        var headers = request.headers
        var added: [(name: String, value: String)] = [("X-Amz-Date", stamp)]
        if sendsPayloadHash { added.append(("X-Amz-Content-SHA256", payloadHash)) }
        if let token = credentials.sessionToken, signsSessionToken { added.append(("X-Amz-Security-Token", token)) }
        headers += added
        let canonical = Self.canonicalHeaders(headers)
        let canonicalRequest = [
            request.method, canonicalPath(request.path), Self.canonicalQuery(request.query), canonical.text, canonical.signedNames,
            payloadHash,
        ].joined(separator: "\n")
        let (stringToSign, signature) = sign(canonicalRequest, stamp: stamp)
        added.append(
            (
                "Authorization",
                "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(stamp)), SignedHeaders=\(canonical.signedNames), Signature=\(signature)"
            ))
        if let token = credentials.sessionToken, !signsSessionToken { added.append(("X-Amz-Security-Token", token)) }
        return Signature(canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature, headers: added, query: [])
    }

    /// Signs as a presigned URL valid for `expires` seconds: the returned query parameters go
    /// after the request's own. `payloadHash` is ``unsignedPayload`` for S3.
    public func presign(
        _ request: Request, payloadHash: String, date: Date, expires: Int, signsSessionToken: Bool = true
    ) -> Signature {
        let stamp = Self.timestamp(date)
        let canonical = Self.canonicalHeaders(request.headers)
        var added: [(name: String, value: String)] = [
            ("X-Amz-Algorithm", Self.algorithm),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(stamp))"),
            ("X-Amz-Date", stamp),
            ("X-Amz-SignedHeaders", canonical.signedNames),
            ("X-Amz-Expires", String(expires)),
        ]
        if let token = credentials.sessionToken, signsSessionToken { added.append(("X-Amz-Security-Token", token)) }
        let canonicalRequest = [
            request.method, canonicalPath(request.path), Self.canonicalQuery(request.query + added), canonical.text, canonical.signedNames,
            payloadHash,
        ].joined(separator: "\n")
        let (stringToSign, signature) = sign(canonicalRequest, stamp: stamp)
        if let token = credentials.sessionToken, !signsSessionToken { added.append(("X-Amz-Security-Token", token)) }
        added.append(("X-Amz-Signature", signature))
        return Signature(canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature, headers: [], query: added)
    }

    // MARK: - The steps

    /// `20150830/us-east-1/s3/aws4_request`.
    private func scope(_ stamp: String) -> String {
        "\(stamp.prefix(8))/\(region)/\(service)/aws4_request"
    }

    /// The string to sign and its signature, by the key derived for the day, region and service.
    private func sign(_ canonicalRequest: String, stamp: String) -> (stringToSign: String, signature: String) {
        let stringToSign = [Self.algorithm, stamp, scope(stamp), Digest.sha256(Data(canonicalRequest.utf8)).encoded].joined(separator: "\n")
        var key = HMACSHA256.code(key: Array("AWS4\(credentials.secretAccessKey)".utf8), message: Array(stamp.prefix(8).utf8))
        for part in [region, service, "aws4_request"] {
            key = HMACSHA256.code(key: key, message: Array(part.utf8))
        }
        return (stringToSign, Self.hex(HMACSHA256.code(key: key, message: Array(stringToSign.utf8))))
    }

    /// The path, its segments encoded once (and normalized when asked).
    func canonicalPath(_ path: String) -> String {
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if normalizesPath {
            var kept: [String] = []
            for segment in segments.dropFirst() {
                switch segment {
                case "", ".": continue
                case "..": _ = kept.popLast()
                default: kept.append(segment)
                }
            }
            let trailing = path.count > 1 && path.hasSuffix("/") && !kept.isEmpty
            segments = [""] + kept + (trailing ? [""] : [])
            if kept.isEmpty { return "/" }
        }
        let encoded = segments.map { Self.encode($0) }.joined(separator: "/")
        return encoded.isEmpty ? "/" : encoded
    }

    /// Parameters encoded, sorted by name then value, joined with `&`.
    static func canonicalQuery(_ items: [(name: String, value: String)]) -> String {
        let encoded: [(name: String, value: String)] = items.map { (encode($0.name), encode($0.value)) }
        let sorted = encoded.sorted { left, right in left.name == right.name ? left.value < right.value : left.name < right.name }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// Names lowercased and sorted; a repeated name's values joined with commas in their order;
    /// each value trimmed, its runs of spaces made one.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (text: String, signedNames: String) {
        var values: [String: [String]] = [:]
        for (name, value) in headers {
            let collapsed = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
            values[name.lowercased(), default: []].append(collapsed)
        }
        let names = values.keys.sorted()
        let text = names.map { "\($0):\(values[$0]!.joined(separator: ","))\n" }.joined()
        return (text, names.joined(separator: ";"))
    }

    /// Percent-encodes every byte of the UTF-8 form but the unreserved ones (RFC 3986), as
    /// signing does: what a URL for the signed request must carry.
    public static func encode(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if unreserved[Int(byte)] {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result.append("%")
                result.append(upperHex[Int(byte >> 4)])
                result.append(upperHex[Int(byte & 0xF)])
            }
        }
        return result
    }

    private static let upperHex = Array("0123456789ABCDEF")

    /// RFC 3986's unreserved bytes: letters, digits, `-`, `_`, `.`, `~`.
    private static let unreserved: [Bool] = (0...255).map { byte in
        let scalar = Unicode.Scalar(UInt8(byte))
        return ("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
            || "-_.~".unicodeScalars.contains(scalar)
    }

    /// `20150830T123600Z`.
    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        return
            "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { byte in String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16) }.joined()
    }
}
