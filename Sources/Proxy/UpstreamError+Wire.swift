import OCI
import RegistryClient

extension UpstreamError {
    /// What was asked, so a bare 404 becomes the right error code.
    enum Subject {
        case manifest
        case blob
        case repository
    }

    /// The error a client should see for this upstream failure. The upstream's own OCI errors are
    /// kept when it answered "no"; an unreachable or misbehaving upstream becomes `UNAVAILABLE`.
    func registryError(for subject: Subject, upstream: String) -> RegistryError {
        switch self {
        case .status(401, _, _), .status(403, _, _):
            return RegistryError(.denied, "upstream \(upstream) refused access (\(self))")
        case .status(429, _, let retryAfter):
            let wait = retryAfter.map { ", retry after \($0)" } ?? ""
            return RegistryError(.tooManyRequests, "upstream \(upstream) rate-limits this mirror\(wait)", detail: retryAfter)
        case .status(let status, let errors, _) where (400..<500).contains(status):
            // The upstream said no: pass its answer on, with its status.
            var error = errors.first ?? unknown(subject, upstream: upstream)
            error.statusOverride = status
            return error
        case .status, .transport, .invalidResponse:
            return RegistryError(.unavailable, "upstream \(upstream) unavailable: \(self)")
        }
    }

    private func unknown(_ subject: Subject, upstream: String) -> RegistryError {
        switch subject {
        case .manifest: RegistryError(.manifestUnknown, "manifest unknown to upstream \(upstream)")
        case .blob: RegistryError(.blobUnknown, "blob unknown to upstream \(upstream)")
        case .repository: RegistryError(.nameUnknown, "repository unknown to upstream \(upstream)")
        }
    }
}
