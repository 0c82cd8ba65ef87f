import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RegistryClient
import ServiceLifecycle
import Synchronization

/// A loopback HTTP proxy in front of a real registry that misbehaves on demand: it drops the
/// connection in the middle of a blob, serves a blob with a flipped byte, or holds a blob
/// half-sent until the test releases it. Everything else passes through unchanged.
public final class FaultInjectingProxy: Sendable {
    public enum BlobFault: Sendable, Hashable {
        case none
        /// Sends this many bytes of a blob, then closes the connection.
        case dropAfter(Int)
        /// Sends the blob with one byte changed (same length, wrong digest).
        case corrupt
        /// Sends this many bytes of a blob, then waits for ``release()`` (a smaller blob goes whole).
        case holdAfter(Int)
        /// Sends blobs at about this many bytes per second (a tenth every 100 ms), until the
        /// fault changes: then the rest goes at once.
        case throttle(bytesPerSecond: Int)
    }

    public enum ManifestFault: Sendable, Hashable {
        case none
        /// Answers every manifest request with this status and these headers (e.g. 429 + Retry-After).
        case status(Int, [String: String])
        /// Answers 200 with bytes that are not JSON.
        case notJSON
        /// Answers 200 with a 5 MiB body.
        case huge
    }

    public let port: Int
    private let manifestFault = Mutex(ManifestFault.none)
    public var url: String { "http://127.0.0.1:\(port)" }
    private let fault = Mutex(BlobFault.none)
    private let gate = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let task = Mutex<Task<Void, any Error>?>(nil)

    private init(port: Int) {
        self.port = port
    }

    /// Starts the proxy in front of `upstream` (e.g. `http://127.0.0.1:5000`).
    public static func start(upstream: String) async throws -> FaultInjectingProxy {
        let proxy = FaultInjectingProxy(port: try freeLoopbackPort())
        var logger = Logger(label: "fault-proxy")
        logger.logLevel = .critical
        let transport = CurlTransport()
        let application = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in
                try await proxy.forward(request, to: upstream, transport: transport)
            },
            configuration: .init(address: .hostname("127.0.0.1", port: proxy.port)),
            logger: logger
        )
        proxy.task.withLock { $0 = Task { try await application.runService() } }
        try await waitUntil(timeout: .seconds(10), "the fault-injecting proxy") { await httpStatus("\(proxy.url)/v2/") == 200 }
        return proxy
    }

    public func setBlobFault(_ fault: BlobFault) {
        self.fault.withLock { $0 = fault }
        gate.withLock { $0.open = false }
    }

    public func setManifestFault(_ fault: ManifestFault) {
        manifestFault.withLock { $0 = fault }
    }

    /// Lets held blobs continue.
    public func release() {
        let waiters = gate.withLock { gate in
            gate.open = true
            defer { gate.waiters = [] }
            return gate.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    public func stop() async {
        release()
        let task = self.task.withLock { $0 }
        task?.cancel()
        _ = try? await task?.value
    }

    private func manifestFaultResponse() -> Response? {
        let json: HTTPField = HTTPField(name: .contentType, value: "application/vnd.oci.image.manifest.v1+json")
        switch manifestFault.withLock({ $0 }) {
        case .none:
            return nil
        case .status(let status, let headers):
            var fields = HTTPFields()
            for (name, value) in headers { if let name = HTTPField.Name(name) { fields[name] = value } }
            return Response(status: .init(code: status), headers: fields)
        case .notJSON:
            return Response(
                status: .ok, headers: [json.name: json.value], body: .init(byteBuffer: ByteBuffer(string: "<html>not a manifest</html>")))
        case .huge:
            let body = ByteBuffer(repeating: UInt8(ascii: " "), count: 5 << 20)
            return Response(status: .ok, headers: [json.name: json.value], body: .init(byteBuffer: body))
        }
    }

    private func waitForGate() async {
        await withCheckedContinuation { continuation in
            let open = gate.withLock { gate in
                if !gate.open { gate.waiters.append(continuation) }
                return gate.open
            }
            if open { continuation.resume() }
        }
    }

    private func forward(_ request: Request, to upstream: String, transport: CurlTransport) async throws -> Response {
        if request.uri.path.contains("/manifests/"), let response = manifestFaultResponse() { return response }
        var headers = RegistryClient.UpstreamHeaders()
        for field in request.headers {
            let name = field.name.canonicalName
            if ["accept", "authorization", "range"].contains(name) { headers.add(field.name.rawName, field.value) }
        }
        let method: RegistryClient.UpstreamRequest.Method = request.method == .head ? .head : .get
        let upstreamResponse = try await transport.send(
            RegistryClient.UpstreamRequest(method: method, url: upstream + request.uri.description, headers: headers))
        var fields = HTTPFields()
        for field in upstreamResponse.headers {
            if let name = HTTPField.Name(field.name),
                [
                    "content-type", "content-length", "docker-content-digest", "docker-distribution-api-version", "location",
                    "www-authenticate", "content-range",
                ].contains(name.canonicalName)
            {
                fields.append(HTTPField(name: name, value: field.value))
            }
        }
        let status = HTTPResponse.Status(code: upstreamResponse.status)
        let isBlob = request.method == .get && request.uri.path.contains("/blobs/sha256:") && upstreamResponse.status == 200
        let fault = isBlob ? self.fault.withLock { $0 } : .none
        let body = upstreamResponse.body
        let length = upstreamResponse.headers["Content-Length"].flatMap { Int($0) }
        return Response(
            status: status,
            headers: fields,
            body: ResponseBody(contentLength: request.method == .head ? nil : length) { writer in
                guard request.method != .head else { return try await writer.finish(nil) }
                var whole = try await body.collect(upTo: 2 << 30)
                switch fault {
                case .none:
                    try await writer.write(whole)
                case .dropAfter(let count):
                    try await writer.write(whole.readSlice(length: min(count, whole.readableBytes)) ?? ByteBuffer())
                    throw CancellationError()
                case .corrupt:
                    let middle = whole.readerIndex + whole.readableBytes / 2
                    if let byte = whole.getInteger(at: middle, as: UInt8.self) { whole.setInteger(byte ^ 0xff, at: middle) }
                    try await writer.write(whole)
                case .holdAfter(let count):
                    // A blob no larger than `count` has nothing to hold back: sent whole.
                    try await writer.write(whole.readSlice(length: min(count, whole.readableBytes)) ?? ByteBuffer())
                    if whole.readableBytes > 0 {
                        await self.waitForGate()
                        try await writer.write(whole)
                    }
                case .throttle(let rate):
                    let step = max(1, rate / 10)
                    while case .throttle = self.fault.withLock({ $0 }),
                        let slice = whole.readSlice(length: min(step, whole.readableBytes)), slice.readableBytes > 0
                    {
                        try await writer.write(slice)
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    if whole.readableBytes > 0 { try await writer.write(whole) }
                }
                try await writer.finish(nil)
            }
        )
    }
}
