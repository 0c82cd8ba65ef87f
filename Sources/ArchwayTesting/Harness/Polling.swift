import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// ``waitUntil(timeout:interval:_:_:)`` gave up.
public struct WaitTimedOut: Error, CustomStringConvertible, Sendable {
    public let what: String
    public let timeout: Duration
    public var description: String { "timed out after \(timeout) waiting for \(what)" }
}

/// Polls `condition` every `interval` until it returns `true`.
/// - Throws: ``WaitTimedOut`` after `timeout`, or `CancellationError` when the task is cancelled.
public func waitUntil(
    timeout: Duration,
    interval: Duration = .milliseconds(50),
    _ what: String = "a condition",
    isolation: isolated (any Actor)? = #isolation,
    _ condition: () async -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if await condition() { return }
        if clock.now >= deadline { throw WaitTimedOut(what: what, timeout: timeout) }
        try await Task.sleep(for: interval)
    }
}

/// A URLSession for talking to loopback servers: no caches, no cookies, no proxies.
let harnessURLSession: URLSession = {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
    configuration.urlCache = nil
    configuration.httpCookieStorage = nil
    configuration.connectionProxyDictionary = [:]
    configuration.timeoutIntervalForRequest = 120
    configuration.timeoutIntervalForResource = 3600
    return URLSession(configuration: configuration)
}()

/// The status of `GET url`, or `nil` when the server can not be reached (or takes over 5 s).
public func httpStatus(_ url: String) async -> Int? {
    guard let target = URL(string: url) else { return nil }
    var request = URLRequest(url: target, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 5)
    request.httpMethod = "GET"
    guard let (_, response) = try? await harnessURLSession.data(for: request) else { return nil }
    return (response as? HTTPURLResponse)?.statusCode
}

/// The answer to one HTTP request made by the harness.
public struct HTTPResult: Sendable {
    public let status: Int
    /// Header names in lower case.
    public let headers: [String: String]
    public let body: Data

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// One HTTP request to a loopback server (no redirects are special-cased: URLSession follows them).
public func httpRequest(
    _ method: String,
    _ url: String,
    headers: [String: String] = [:],
    body: Data? = nil,
    timeout: TimeInterval = 120
) async throws -> HTTPResult {
    guard let target = URL(string: url) else { throw HarnessError("bad URL: \(url)") }
    var request = URLRequest(url: target, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
    request.httpMethod = method
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response): (Data, URLResponse)
    if let body {
        (data, response) = try await harnessURLSession.upload(for: request, from: body)
    } else {
        (data, response) = try await harnessURLSession.data(for: request)
    }
    return try HTTPResult(response, data, url: url)
}

extension HTTPResult {
    init(_ response: URLResponse, _ data: Data, url: String) throws {
        guard let http = response as? HTTPURLResponse else { throw HarnessError("no HTTP response from \(url)") }
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        self.init(status: http.statusCode, headers: headers, body: data)
    }
}
