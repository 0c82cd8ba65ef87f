import Hummingbird
import OCI
import Proxy

/// Refuses a request that needs credentials it does not carry (`401` with a Basic challenge) or
/// carries wrong ones (`401`), and an address that failed too often (`429`). The operational
/// endpoints stay open unless `auth.admins` names who may read them (probes stay open
/// whatever it says), and a path that is no endpoint is simply not found.
struct AuthenticationMiddleware: MiddlewareProtocol {
    let authentication: ClientAuthentication

    func handle(
        _ request: Request, context: ArchwayRequestContext, next: (Request, ArchwayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard case .success(let endpoint) = context.endpoint, endpoint != .notFound else { return try await next(request, context) }
        if endpoint.isOperational {
            guard !authentication.admins.isEmpty, !endpoint.isProbe else { return try await next(request, context) }
            switch await authentication.authenticate(request.headers[.authorization], from: context.remoteAddress?.ipAddress) {
            case .user(let name) where authentication.admins.contains(name):
                return try await next(request, context)
            case .user:
                throw RegistryError(.denied, "the operator's endpoints are for the users auth.admins names")
            case .anonymous:
                throw Unauthorized(message: "the operator's endpoints need an admin's credentials")
            case .invalid:
                throw Unauthorized(message: "the credentials are not valid")
            case .throttled:
                throw RegistryError(.tooManyRequests, "too many failed authentication attempts from this address; retry in a minute")
            }
        }
        // A user the proxy listener authenticated is that user inside the tunnel too (the
        // client's own credentials for the registry are not Archway's to check).
        let outcome: ClientAuthentication.Outcome
        if let user = InterceptedSession.current?.user {
            outcome = .user(user)
        } else {
            outcome = await authentication.authenticate(request.headers[.authorization], from: context.remoteAddress?.ipAddress)
        }
        switch outcome {
        case .invalid:
            throw Unauthorized(message: "the credentials are not valid")
        case .throttled:
            throw RegistryError(.tooManyRequests, "too many failed authentication attempts from this address; retry in a minute")
        case .user:
            return try await next(request, context)
        case .anonymous:
            let isPrivate = (try? context.repository?.get())?.isPrivate == true
            guard authentication.admitsAnonymous(toPrivate: isPrivate) else {
                throw Unauthorized(
                    message: authentication.required ? "authentication required" : "this repository is served to authenticated clients only"
                )
            }
            // Clients learn from the `/v2/` ping whether to send credentials (skopeo and podman
            // send them only after a challenge there); without credentials they still pull
            // public content.
            if endpoint == .base, authentication.hasUsers { throw Unauthorized(message: "credentials are accepted here") }
            return try await next(request, context)
        }
    }
}
