import HTTPTypes
import NIOCore
import NIOHPACK
import NIOHTTP2
import OCI
import Proxy

/// The warm path of an HTTP/2 connection: answers a stream that opens with a complete warm
/// manifest GET or HEAD (HEADERS with END_STREAM) with HEADERS and DATA frames, on the
/// connection, before any stream channel or task exists for it; hands every other frame on to
/// the stream multiplexer behind it (see ``ArchwayHTTP2Channel``). `NIOHTTP2Handler` in front
/// has validated the header block and keeps stream state, flow control and the stream limit for
/// the streams answered here as for the others. A frame the client sends for an answered stream
/// while its answer waits for the window (WINDOW_UPDATE, RST_STREAM) reaches the multiplexer,
/// which drops it as a frame for a stream it does not know (after the stream closes,
/// NIOHTTP2Handler ignores such frames itself).
final class WarmHTTP2Handler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private var connection: WarmConnection
    init(path: WarmManifestPath, upstream: String?) {
        connection = WarmConnection(path: path, upstream: upstream, proto: "h2")
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection.remote = context.channel.remoteAddress
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A HEADERS frame with `:method` opens a stream: NIOHTTP2Handler refuses pseudo-header
        // fields in trailers.
        let frame = unwrapInboundIn(data)
        if case .headers(let headers) = frame.payload, headers.endStream {
            let started = ContinuousClock.now
            if let request = Self.request(headers.headers), let (answer, route) = connection.answer(request),
                let cost = connection.path.reserve(answer, for: request)
            {
                respond(answer, route: route, to: request, cost: cost, on: frame.streamID, started: started, context: context)
                return
            }
        }
        context.fireChannelRead(data)
    }

    private func respond(
        _ answer: ManifestAnswer, route: UpstreamRouter.Route, to request: HTTPRequest, cost: Int, on stream: HTTP2StreamID,
        started: ContinuousClock.Instant, context: ChannelHandlerContext
    ) {
        let headers = connection.headers(for: answer)
        var block = HPACKHeaders()
        block.reserveCapacity(headers.count + 1)
        block.add(name: ":status", value: "200")
        for field in headers {
            block.add(name: field.name.canonicalName, value: field.value)
        }
        let isHead = request.method == .head
        // The last frame's write completes once the answer has left (after the client's window
        // let it): then its cost goes back to the budget.
        let written = context.eventLoop.makePromise(of: Void.self)
        let budget = connection.path.budget
        written.futureResult.whenComplete { _ in budget.release(cost) }
        context.write(
            wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: block, endStream: isHead)))),
            promise: isHead ? written : nil)
        if !isHead {
            let body = context.channel.allocator.buffer(bytes: answer.manifest.bytes)
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(body), endStream: true)))),
                promise: written)
        }
        // The connection manager holds flushes until the read that carried the request ends,
        // so the answers to one read's streams leave together.
        context.flush()
        connection.served(request, answer: answer, route: route, started: started)
    }

    /// The request a header block asks, for the warm path to judge: nil for a block without
    /// `:method` or `:path`, or with a name HTTP does not allow. Only GET and HEAD are converted
    /// (anything else takes the full path without the cost).
    static func request(_ block: HPACKHeaders) -> HTTPRequest? {
        guard let method = block.first(name: ":method"), method == "GET" || method == "HEAD" else { return nil }
        var path: String?
        var scheme: String?
        var authority: String?
        var fields = HTTPFields()
        fields.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": continue
                case ":path": path = value
                case ":scheme": scheme = value
                case ":authority": authority = value
                default: return nil
                }
            } else if let fieldName = HTTPField.Name(name) {
                fields.append(HTTPField(name: fieldName, value: value))
            } else {
                return nil
            }
        }
        guard let path else { return nil }
        return HTTPRequest(
            method: method == "GET" ? .get : .head, scheme: scheme, authority: authority, path: path, headerFields: fields)
    }
}
