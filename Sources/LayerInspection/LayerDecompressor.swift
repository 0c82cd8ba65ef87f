import CZlib
import CZstd

/// How a layer is compressed, told by its first bytes: a layer's media type can be wrong, its
/// magic number cannot.
public enum LayerCompression: String, Sendable, Hashable {
    case gzip
    case zstd
    /// A plain tar stream.
    case none

    /// The compression of a stream that starts with `prefix` (at least four bytes to tell zstd).
    public static func detect(_ prefix: some Collection<UInt8>) -> LayerCompression {
        let bytes = Array(prefix.prefix(4))
        if bytes.count >= 2, bytes[0] == 0x1f, bytes[1] == 0x8b { return .gzip }
        if bytes == [0x28, 0xb5, 0x2f, 0xfd] { return .zstd }
        return .none
    }
}

/// A layer's bytes could not be decompressed.
public struct DecompressionError: Error, CustomStringConvertible {
    public var description: String
}

/// Decompresses a layer as its bytes arrive: gzip (also several members back to back) through
/// zlib, zstd through libzstd, plain tar as it is. Used from one thread at a time; what it
/// produces is handed to `sink` in pieces of at most 256 KiB, and a sink that throws stops it.
/// Memory is bounded: zlib's 32 KiB window, and zstd frames asking for a window over 128 MiB are
/// refused.
public final class LayerDecompressor {
    private enum State {
        case gzip(UnsafeMutablePointer<z_stream>)
        case zstd(OpaquePointer)
        case plain
    }

    static let outputSize = 256 << 10
    private let state: State
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: LayerDecompressor.outputSize, alignment: 16)
    public let compression: LayerCompression

    public init(_ compression: LayerCompression) throws(DecompressionError) {
        self.compression = compression
        switch compression {
        case .gzip:
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            guard archway_inflate_init(stream) == Z_OK else {
                stream.deallocate()
                output.deallocate()
                throw DecompressionError(description: "zlib could not start")
            }
            state = .gzip(stream)
        case .zstd:
            guard let context = ZSTD_createDCtx() else {
                output.deallocate()
                throw DecompressionError(description: "zstd could not start")
            }
            ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, 27)
            state = .zstd(context)
        case .none:
            state = .plain
        }
    }

    deinit {
        switch state {
        case .gzip(let stream):
            inflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        case .zstd(let context):
            ZSTD_freeDCtx(context)
        case .plain:
            break
        }
        output.deallocate()
    }

    /// Decompresses `input`, handing what it gives to `sink`.
    public func feed(_ input: UnsafeRawBufferPointer, into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = input.baseAddress, !input.isEmpty else { return }
        switch state {
        case .plain:
            try sink(input)
        case .gzip(let stream):
            stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            while true {
                stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(output.count)
                let status = inflate(stream, Z_NO_FLUSH)
                let produced = output.count - Int(stream.pointee.avail_out)
                if produced > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[0..<produced])) }
                switch status {
                case Z_STREAM_END:
                    // Another gzip member may follow (pigz, concatenated layers).
                    guard stream.pointee.avail_in > 0 else { return }
                    inflateReset(stream)
                case Z_OK:
                    if stream.pointee.avail_in == 0, stream.pointee.avail_out > 0 { return }
                case Z_BUF_ERROR:
                    return  // needs more input
                default:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw DecompressionError(description: "gzip: \(message)")
                }
            }
        case .zstd(let context):
            var source = ZSTD_inBuffer(src: base, size: input.count, pos: 0)
            while true {
                var target = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
                let status = ZSTD_decompressStream(context, &target, &source)
                if ZSTD_isError(status) != 0 {
                    throw DecompressionError(description: "zstd: \(String(cString: ZSTD_getErrorName(status)))")
                }
                if target.pos > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[0..<target.pos])) }
                if source.pos == source.size, target.pos < target.size { return }
            }
        }
    }
}
