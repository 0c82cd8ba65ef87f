import Foundation

/// An error as the distribution spec puts it on the wire: a stable `code`, a human `message`,
/// and an optional `detail`.
///
/// Errors render themselves: ``body(_:)`` is the JSON body a registry answers with, and
/// ``Code/status`` is the HTTP status the spec assigns to the code. ``decodeBody(_:)`` reads
/// the same shape back from an upstream.
///
/// ```swift
/// throw RegistryError(.manifestUnknown, "manifest unknown to the upstream")
/// ```
public struct RegistryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A spec error code, e.g. `MANIFEST_UNKNOWN`. Codes this module does not know are kept as is.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        /// The code as it appears on the wire.
        public let rawValue: String

        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        public static let blobUnknown = Code(rawValue: "BLOB_UNKNOWN")
        public static let blobUploadInvalid = Code(rawValue: "BLOB_UPLOAD_INVALID")
        public static let blobUploadUnknown = Code(rawValue: "BLOB_UPLOAD_UNKNOWN")
        public static let digestInvalid = Code(rawValue: "DIGEST_INVALID")
        public static let manifestBlobUnknown = Code(rawValue: "MANIFEST_BLOB_UNKNOWN")
        public static let manifestInvalid = Code(rawValue: "MANIFEST_INVALID")
        public static let manifestUnknown = Code(rawValue: "MANIFEST_UNKNOWN")
        public static let nameInvalid = Code(rawValue: "NAME_INVALID")
        public static let nameUnknown = Code(rawValue: "NAME_UNKNOWN")
        public static let sizeInvalid = Code(rawValue: "SIZE_INVALID")
        public static let unauthorized = Code(rawValue: "UNAUTHORIZED")
        public static let denied = Code(rawValue: "DENIED")
        public static let unsupported = Code(rawValue: "UNSUPPORTED")
        public static let tooManyRequests = Code(rawValue: "TOOMANYREQUESTS")
        /// Not in the OCI spec; distribution answers an invalid tag with it.
        public static let tagInvalid = Code(rawValue: "TAG_INVALID")
        /// Not in the OCI spec; distribution's code for an unavailable backend (here: the upstream).
        public static let unavailable = Code(rawValue: "UNAVAILABLE")
        /// Not in the OCI spec; a `Range` that cannot be satisfied.
        public static let rangeInvalid = Code(rawValue: "RANGE_INVALID")

        /// Not in the OCI spec; distribution's code for an `n` that is not a non-negative number.
        public static let paginationNumberInvalid = Code(rawValue: "PAGINATION_NUMBER_INVALID")
        /// Not in the OCI spec; a path that is no route of the API.
        public static let notFound = Code(rawValue: "NOT_FOUND")

        /// The HTTP status the spec assigns to this code; 500 for codes it does not know.
        public var status: Int {
            switch self {
            case .blobUnknown, .blobUploadUnknown, .manifestBlobUnknown, .manifestUnknown, .nameUnknown, .notFound: 404
            case .blobUploadInvalid, .digestInvalid, .manifestInvalid, .nameInvalid, .sizeInvalid, .tagInvalid, .paginationNumberInvalid:
                400
            case .unauthorized: 401
            case .denied: 403
            case .unsupported: 405
            case .rangeInvalid: 416
            case .tooManyRequests: 429
            case .unavailable: 503
            default: 500
            }
        }

        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    /// Extra information; on the wire a JSON string. Details of other JSON shapes read from an
    /// upstream are kept as their JSON text.
    public var detail: String?
    /// The status to answer with when it is not the code's own: an upstream's error passed on
    /// keeps the status the upstream gave it.
    public var statusOverride: Int?

    public init(_ code: Code, _ message: String, detail: String? = nil, status: Int? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
        self.statusOverride = status
    }

    /// The HTTP status of this error on the wire.
    public var statusCode: Int { statusOverride ?? code.status }

    public var description: String {
        if let detail {
            return "\(code.rawValue): \(message) (\(detail))"
        }
        return "\(code.rawValue): \(message)"
    }
}

extension RegistryError {
    /// The spec's error body, compact: `{"errors":[{"code":"…","message":"…","detail":"…"}]}`.
    ///
    /// `detail` is omitted when nil and otherwise written as a JSON string.
    public static func body(_ errors: [RegistryError]) -> Data {
        var json = #"{"errors":["#
        for (index, error) in errors.enumerated() {
            if index > 0 {
                json += ","
            }
            json += #"{"code":"# + JSONValue.quoted(error.code.rawValue)
            json += #","message":"# + JSONValue.quoted(error.message)
            if let detail = error.detail {
                json += #","detail":"# + JSONValue.quoted(detail)
            }
            json += "}"
        }
        json += "]}"
        return Data(json.utf8)
    }

    /// Reads an upstream's error body; nil when `data` is not one or holds no usable error.
    ///
    /// Entries without a string `code` are skipped; a missing `message` reads as empty. A string
    /// `detail` is kept as the string, any other JSON value as its compact JSON text (keys sorted).
    public static func decodeBody(_ data: Data) -> [RegistryError]? {
        guard let body = try? JSONValue.parse(data),
            case .object(let fields) = body,
            case .array(let entries)? = fields["errors"]
        else {
            return nil
        }
        let errors = entries.compactMap { entry -> RegistryError? in
            guard case .object(let fields) = entry, case .string(let code)? = fields["code"] else {
                return nil
            }
            var message = ""
            if case .string(let text)? = fields["message"] {
                message = text
            }
            let detail: String? =
                switch fields["detail"] {
                case nil, .null?: nil
                case .string(let text)?: text
                case let value?: value.jsonText
                }
            return RegistryError(Code(rawValue: code), message, detail: detail)
        }
        return errors.isEmpty ? nil : errors
    }
}

extension RegistryError {
    /// `input` quoted for a message: escaped like a Swift literal and cut to `limit` characters,
    /// so hostile input (NUL, newlines, megabytes) cannot forge or flood a log line.
    static func quote(_ input: some StringProtocol, limit: Int = 80) -> String {
        let text = String(input)
        if text.count <= limit {
            return String(reflecting: text)
        }
        return String(reflecting: String(text.prefix(limit))) + "…"
    }
}

/// A failure of a service Archway depends on (object storage, the catalog's database), not of
/// the client's request: answered `503 UNAVAILABLE` naming the dependency, never with its own
/// text (which stays in the log).
public protocol DependencyFailure: Error {
    /// The dependency that failed, as a client may read it ("the object storage"); nil when the
    /// failure is of another kind.
    var failedDependency: String? { get }
}
