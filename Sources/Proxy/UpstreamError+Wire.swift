import Logging
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
        case .status(let status, let errors, _) where status == 404 || status == 410:
            // The upstream does not have it: its own error when it is a not-found one.
            return errors.first { $0.code.status == 404 } ?? unknown(subject, upstream: upstream)
        case .status(400, let errors, _):
            // The upstream refused the name or reference as invalid.
            return errors.first { $0.code.status == 400 }
                ?? RegistryError(.nameInvalid, "upstream \(upstream) refused the request as invalid")
        case .status(let status, _, _) where (400..<500).contains(status):
            // Any other refusal (405, 406, 431, ...) is about how Archway asked, not about what the
            // client asked for: a bad gateway, never passed on as if it were the client's error.
            return RegistryError(.unavailable, "upstream \(upstream) refused Archway's request with \(status)", status: 502)
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

extension UpstreamError {
    /// The client's error for this failure of `route`'s upstream; an unavailable upstream is
    /// logged (the client sees only that it is unavailable).
    func registryError(for subject: Subject, route: UpstreamRouter.Route, logger: Logger) -> RegistryError {
        let wire = registryError(for: subject, upstream: route.upstream.name)
        if wire.code == .unavailable {
            logger.warning("upstream failed", metadata: ["repository": "\(route.key)", "error": "\(self)"])
        }
        return wire
    }
}

/// The error for content that is not cached while offline.
func offlineMiss(_ what: String) -> RegistryError {
    RegistryError(.unavailable, "offline: \(what) is not in the cache and the upstream is not contacted")
}
