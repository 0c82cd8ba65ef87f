import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// An upstream registry written to attack Archway, for what a real registry will not do. Under
/// `/v2/evil/<case>/...` it answers:
///
/// | case | answer |
/// |---|---|
/// | `nested` | `404` whose 52 KB error body nests objects 500 deep, 17 times |
/// | `redirect` | a redirect of every manifest to ``internalURL``, a loopback "metadata service" |
/// | `tags` | `tags/list` with 50 000 tags, whatever `n` asks |
/// | `431` | `431 Request Header Fields Too Large` |
/// | `liar` | an OCI manifest served as a Docker v2 manifest |
/// | `wide` | tag `1`: an OCI index with 20 000 children, none of them `linux/riscv64` |
///
/// It counts the requests of each case, and those the internal service received.
public final class HostileUpstream: Sendable {
    public let port: Int
    public let internalPort: Int
    public var url: String { "http://127.0.0.1:\(port)" }
    /// The loopback service a redirect points at; it must never be reached through Archway.
    public var internalURL: String { "http://127.0.0.1:\(internalPort)/latest/meta-data" }
    private let counts = Mutex<[String: Int]>([:])
    private let tasks = Mutex<[Task<Void, any Error>]>([])

    /// The nested error body (52 KB): a detail of 17 objects each nested 500 deep, just inside
    /// Foundation's JSON depth limit, where a decoder that tries every shape at every level costs
    /// time in the cube of the depth.
    public static let nestedBody: String = {
        let deep = String(repeating: #"{"a":"#, count: 500) + "1" + String(repeating: "}", count: 500)
        return #"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"m","detail":["#
            + Array(repeating: deep, count: 17).joined(separator: ",") + "]}]}"
    }()

    private init(port: Int, internalPort: Int) {
        self.port = port
        self.internalPort = internalPort
    }

    /// Requests received for `name` (`nested`, `tags`, ..., or `internal`).
    public func count(_ name: String) -> Int { counts.withLock { $0[name, default: 0] } }

    private func hit(_ name: String) { counts.withLock { $0[name, default: 0] += 1 } }

    public static func start() async throws -> HostileUpstream {
        let upstream = HostileUpstream(port: try freeLoopbackPort(), internalPort: try freeLoopbackPort())
        var logger = Logger(label: "hostile-upstream")
        logger.logLevel = .critical
        let wide = Self.wideIndex()
        let application = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in upstream.answer(request, wide: wide) },
            configuration: .init(address: .hostname("127.0.0.1", port: upstream.port)),
            logger: logger
        )
        let internalService = Application(
            responder: CallbackResponder<BasicRequestContext> { _, _ in
                upstream.hit("internal")
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"instance-id":"i-0123","secret":"s3cr3t"}"#)))
            },
            configuration: .init(address: .hostname("127.0.0.1", port: upstream.internalPort)),
            logger: logger
        )
        upstream.tasks.withLock {
            $0 = [Task { try await application.runService() }, Task { try await internalService.runService() }]
        }
        try await waitUntil(timeout: .seconds(10), "the hostile upstream") { await httpStatus("\(upstream.url)/v2/") == 200 }
        return upstream
    }

    public func stop() async {
        for task in tasks.withLock({ $0 }) {
            task.cancel()
            _ = await task.result
        }
    }

    private func answer(_ request: Request, wide: ByteBuffer) -> Response {
        let path = request.uri.path
        if path == "/v2/" || path == "/v2" { return Response(status: .ok, headers: [.contentType: "application/json"]) }
        let parts = path.split(separator: "/")
        guard parts.count >= 4, parts[0] == "v2", parts[1] == "evil" else { return Response(status: .notFound) }
        let name = String(parts[2])
        hit(name)
        switch name {
        case "nested":
            return Response(
                status: .notFound, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: Self.nestedBody)))
        case "redirect":
            return Response(status: .temporaryRedirect, headers: [.location: internalURL])
        case "tags":
            let tags = (0..<50_000).map { "\"v\($0)\"" }.joined(separator: ",")
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"name":"evil/tags","tags":["# + tags + "]}")))
        case "431":
            return Response(status: .init(code: 431, reasonPhrase: "Request Header Fields Too Large"))
        case "liar":
            let manifest =
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#
            return Response(
                status: .ok, headers: [.contentType: "application/vnd.docker.distribution.manifest.v2+json"],
                body: .init(byteBuffer: ByteBuffer(string: manifest)))
        case "wide":
            return Response(status: .ok, headers: [.contentType: "application/vnd.oci.image.index.v1+json"], body: .init(byteBuffer: wide))
        default:
            return Response(status: .notFound)
        }
    }

    /// An OCI index of 20 000 children, each of its own made-up architecture.
    private static func wideIndex() -> ByteBuffer {
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let children = (0..<20_000).map {
            #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(digest)","size":1,"platform":{"os":"linux","architecture":"arch\#($0)"}}"#
        }
        return ByteBuffer(
            string: #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#
                + children.joined(separator: ",")
                + "]}")
    }
}
