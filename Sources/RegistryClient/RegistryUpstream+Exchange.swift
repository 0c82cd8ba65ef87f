import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import OCI

extension RegistryUpstream {
    static let maximumRedirects = 5
    static let retryDelays: [Duration] = [.milliseconds(200), .seconds(1)]

    /// One logical request: authentication challenges answered, redirects followed, transient
    /// failures retried. Returns a 2xx response whose body is still to be read; anything else
    /// is thrown as an ``UpstreamError``.
    func exchange(
        _ method: UpstreamRequest.Method,
        repository: RepositoryName,
        path: String,
        accept: [String] = [],
        extraHeaders: UpstreamHeaders = [:],
        small: Bool
    ) async throws -> UpstreamResponse {
        let scope = "repository:\(repository):pull"
        var url = "\(baseURL)/v2/\(repository)/\(path)"
        var headers = extraHeaders
        if !accept.isEmpty { headers.replace("Accept", accept.joined(separator: ", ")) }
        var authorization = await cachedAuthorization(scope: scope)
        var answeredChallenge = false
        var redirects = 0
        // Whether the request goes to the upstream itself: credentials and tokens go nowhere else.
        var atHome = true
        // A redirect elsewhere may not reach this machine or an internal address (unless listed).
        var refusesInternalAddresses = false
        while true {
            var request = UpstreamRequest(method: method, url: url, headers: headers, totalTimeout: small ? smallRequestTimeout : nil)
            request.refusesInternalAddresses = refusesInternalAddresses
            if let authorization { request.headers.replace("Authorization", authorization) }
            let response = try await sendRetrying(request)
            switch response.status {
            case 200..<300:
                return response
            case 401 where !atHome:
                _ = try? await response.body.collect(upTo: 64 << 10)
                let host = URLParts(url)?.authority ?? url
                throw UpstreamError.status(
                    401,
                    errors: [RegistryError(.unauthorized, "redirect target \(host) asked for credentials, which go only to \(name)")],
                    retryAfter: nil
                )
            case 401 where !answeredChallenge:
                answeredChallenge = true
                _ = try? await response.body.collect(upTo: 64 << 10)
                guard let header = response.headers["WWW-Authenticate"], let challenge = AuthChallenge(header: header),
                    let answer = try await answer(challenge, scope: scope, requestURL: url)
                else {
                    throw UpstreamError.status(401, errors: [], retryAfter: nil)
                }
                authorization = answer
            case 301, 302, 303, 307, 308:
                _ = try? await response.body.collect(upTo: 64 << 10)
                redirects += 1
                guard redirects <= Self.maximumRedirects, let location = response.headers["Location"],
                    let next = URLParts.resolve(location, against: url), let from = URLParts(url), let to = URLParts(next)
                else {
                    throw UpstreamError.invalidResponse("redirect without a usable Location, or more than \(Self.maximumRedirects)")
                }
                if from.scheme == "https", to.scheme == "http" {
                    throw UpstreamError.invalidResponse("redirect from https to http (\(to.authority)) refused")
                }
                // Credentials never follow a redirect to another host (a CDN, or anyone).
                atHome = to == home
                if !atHome { authorization = nil }
                refusesInternalAddresses = !atHome && !redirectHosts.contains(to.authority) && !redirectHosts.contains(to.host)
                url = next
            default:
                let body = try? await response.body.collect(upTo: 64 << 10)
                let errors = body.flatMap { RegistryError.decodeBody(Data(buffer: $0)) } ?? []
                throw UpstreamError.status(response.status, errors: errors, retryAfter: response.headers["Retry-After"])
            }
        }
    }

    /// Sends, retrying refused connections and 502/503/504 answers a couple of times. Timeouts
    /// are not retried: a stalled upstream must not hold a client for several timeouts.
    private func sendRetrying(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        var attempt = 0
        while true {
            do {
                let started = ContinuousClock.now
                let response = try await transport.send(request)
                record(response, after: ContinuousClock.now - started)
                if [502, 503, 504].contains(response.status), attempt < Self.retryDelays.count {
                    _ = try? await response.body.collect(upTo: 64 << 10)
                    logger.debug("retrying", metadata: ["url": "\(request.url)", "status": "\(response.status)"])
                } else {
                    return response
                }
            } catch let error as TransportError {
                Counter(label: "archway_upstream_requests_total", dimensions: [("upstream", name), ("status", "error")]).increment()
                health?.failed(error.message)
                guard error.isConnectionFailure, attempt < Self.retryDelays.count else { throw UpstreamError.transport(error) }
                logger.debug("retrying", metadata: ["url": "\(request.url)", "error": "\(error.message)"])
            }
            try await Task.sleep(for: Self.retryDelays[attempt])
            attempt += 1
        }
    }

    /// Counts an upstream answer, times it, and notes Docker Hub's remaining pull allowance.
    private func record(_ response: UpstreamResponse, after duration: Duration) {
        Counter(label: "archway_upstream_requests_total", dimensions: [("upstream", name), ("status", String(response.status))]).increment()
        Timer(label: "archway_upstream_duration_seconds", dimensions: [("upstream", name)]).recordNanoseconds(duration.totalNanoseconds)
        // `ratelimit-remaining: 76;w=21600`
        let remaining = response.headers["ratelimit-remaining"]?.split(separator: ";").first.flatMap { Int($0) }
        if let remaining {
            Gauge(label: "archway_upstream_ratelimit_remaining", dimensions: [("upstream", name)]).record(remaining)
        }
        health?.answered(status: response.status, after: duration, rateLimitRemaining: remaining)
    }

    private func cachedAuthorization(scope: String) async -> String? {
        if let token = await tokens.token(for: TokenCache.Key(realm: "", service: name, scope: scope)) {
            return "Bearer \(token)"
        }
        return nil
    }

    /// The `Authorization` value answering a challenge, or nil when it cannot be answered.
    private func answer(_ challenge: AuthChallenge, scope: String, requestURL: String) async throws -> String? {
        switch challenge.scheme {
        case .basic:
            return credentials?.basicAuthorization
        case .other:
            return nil
        case .bearer:
            guard let realm = challenge.parameters["realm"], let realmParts = URLParts(realm) else { return nil }
            let service = challenge.parameters["service"] ?? ""
            let tokenScope = challenge.parameters["scope"] ?? scope
            var query = ["scope=\(percentEncoded(tokenScope))"]
            if !service.isEmpty { query.insert("service=\(percentEncoded(service))", at: 0) }
            var request = UpstreamRequest(
                url: realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"),
                headers: ["Accept": "application/json"],
                totalTimeout: smallRequestTimeout
            )
            // Credentials go only to the upstream's own host or a listed token host, and never
            // from https down to http.
            let trusted = trustsTokenRealm(realmParts)
            if let credentials, trusted {
                request.headers.add("Authorization", credentials.basicAuthorization)
            } else if credentials != nil {
                logger.warning(
                    "token realm is not the upstream's host nor a token host: asking anonymously",
                    metadata: ["realm": "\(realmParts.authority)"]
                )
            }
            if !trusted { request.refusesInternalAddresses = true }
            let response: UpstreamResponse
            do {
                response = try await transport.send(request)
            } catch let error as TransportError {
                throw UpstreamError.transport(error)
            }
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == 200 else {
                throw UpstreamError.status(
                    response.status == 401 ? 401 : 403,
                    errors: [RegistryError(.unauthorized, "token service \(realmParts.authority) answered \(response.status)")],
                    retryAfter: nil
                )
            }
            guard let grant = UpstreamAnswer.tokenGrant(Data(buffer: body)) else {
                throw UpstreamError.invalidResponse("token service \(realmParts.authority) answered no token")
            }
            await tokens.store(grant.token, for: TokenCache.Key(realm: "", service: name, scope: scope), lifetime: grant.lifetime)
            let token = grant.token
            return "Bearer \(token)"
        }
    }

    /// Whether a token realm gets the upstream's credentials: exactly the upstream's own host or
    /// a listed token host (no "same domain" guess: `a.co.uk` is not `evil.co.uk`), and never
    /// from https down to http.
    func trustsTokenRealm(_ realm: URLParts) -> Bool {
        guard let home else { return false }
        let listed = realm.host == home.host || tokenHosts.contains(realm.authority) || tokenHosts.contains(realm.host)
        return listed && !(home.scheme == "https" && realm.scheme == "http")
    }

    private func percentEncoded(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
