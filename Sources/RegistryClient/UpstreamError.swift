import OCI

/// Why an upstream did not give the answer asked for.
public enum UpstreamError: Error, Sendable, CustomStringConvertible {
    /// The upstream answered with an error status; `errors` is its OCI error body, when it had one.
    case status(Int, errors: [RegistryError], retryAfter: String?)
    /// The upstream could not be reached or the transfer broke.
    case transport(TransportError)
    /// The upstream answered something Archway must not pass on: bytes that do not match their
    /// digest, a manifest too large or not JSON, a missing header.
    case invalidResponse(String)

    public var description: String {
        switch self {
        case .status(let status, let errors, _):
            let detail = errors.map { "\($0.code.rawValue): \($0.message)" }.joined(separator: "; ")
            return detail.isEmpty ? "upstream answered \(status)" : "upstream answered \(status) (\(detail))"
        case .transport(let error):
            return "upstream unreachable: \(error.message)"
        case .invalidResponse(let message):
            return "invalid upstream response: \(message)"
        }
    }

    /// The upstream is down or overloaded, as opposed to having answered "no": a cache may serve
    /// what it last knew.
    public var isUnavailable: Bool {
        switch self {
        case .transport: return true
        case .status(let status, _, _): return status == 429 || status >= 500
        case .invalidResponse: return false
        }
    }
}
