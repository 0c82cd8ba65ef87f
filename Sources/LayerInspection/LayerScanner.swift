/// The bounds of one layer's scan: whatever a layer holds, reading it costs at most this.
public struct ScanLimits: Sendable, Hashable {
    /// Decompressed bytes read of one layer at most.
    public var bytesPerLayer: Int64
    /// Decompressed bytes per compressed byte at most (beyond 64 MiB): a gzip of zeros expands
    /// about a thousand times, real layers a few times.
    public var expansion: Int64
    /// Members (files, links, whiteouts) of the whole image at most.
    public var members: Int
    /// Decompressed bytes read of the whole image at most: many layers at the per-layer limit
    /// would otherwise multiply it.
    public var bytesPerImage: Int64

    public init(bytesPerLayer: Int64 = 4 << 30, expansion: Int64 = 100, members: Int = 1_000_000, bytesPerImage: Int64? = nil) {
        self.bytesPerLayer = bytesPerLayer
        self.bytesPerImage = bytesPerImage ?? 4 * bytesPerLayer
        self.expansion = expansion
        self.members = members
    }
}

/// Why a layer's scan stopped before its end.
public enum ScanStop: Error, Sendable, Hashable, CustomStringConvertible {
    /// It decompressed to more than ``ScanLimits/bytesPerLayer``.
    case tooLarge(Int64)
    /// It expanded more than ``ScanLimits/expansion`` times its compressed size (a bomb).
    case expansion(Int64)
    /// The image has more members than ``ScanLimits/members``.
    case tooManyMembers(Int)
    /// The image decompressed to more than ``ScanLimits/bytesPerImage``.
    case imageTooLarge(Int64)
    /// The bytes are not a (compressed) tar stream.
    case malformed(String)

    public var description: String {
        switch self {
        case .tooLarge(let limit): "it decompresses to more than \(limit) bytes"
        case .expansion(let ratio): "it expands more than \(ratio) times (a decompression bomb?)"
        case .tooManyMembers(let limit): "the image has more than \(limit) files"
        case .imageTooLarge(let limit): "the image decompresses to more than \(limit) bytes"
        case .malformed(let why): "it is not a tar stream: \(why)"
        }
    }
}

/// Reads one layer as its (compressed) bytes arrive: detects the compression from the first
/// bytes, decompresses, reads the tar stream, and keeps what ``LayeredFilesystem`` needs.
/// Stops with a ``ScanStop`` at the first limit reached.
public final class LayerScanner {
    private let limits: ScanLimits
    private let compressedSize: Int64
    private let membersBefore: Int
    private var decompressor: LayerDecompressor?
    private var prefix: [UInt8] = []
    private let tar = TarReader()
    private var layer = LayeredFilesystem.Layer()
    public private(set) var decompressedBytes: Int64 = 0

    /// A scanner for a layer of `compressedSize` bytes, in an image whose lower layers hold
    /// `membersBefore` members.
    public init(compressedSize: Int64, membersBefore: Int = 0, limits: ScanLimits = ScanLimits()) {
        self.limits = limits
        self.compressedSize = compressedSize
        self.membersBefore = membersBefore
        tar.onEntry = { [unowned self] entry in
            if LayeredFilesystem.Layer.wantsHead(entry) { return LayeredFilesystem.headLength }
            self.layer.add(entry)
            return 0
        }
        tar.onContent = { [unowned self] entry, head in self.layer.add(entry, head: head) }
    }

    /// The compression, once the first bytes were seen.
    public var compression: LayerCompression? { decompressor?.compression }

    public func feed(_ bytes: UnsafeRawBufferPointer) throws(ScanStop) {
        if tar.isFinished { return }
        do {
            if decompressor == nil {
                // Four bytes tell the compression; a first chunk shorter than that waits.
                prefix.append(contentsOf: bytes)
                guard prefix.count >= 4 else { return }
                decompressor = try LayerDecompressor(LayerCompression.detect(prefix))
                let buffered = prefix
                prefix = []
                try buffered.withUnsafeBytes { try decompress($0) }
            } else {
                try decompress(bytes)
            }
        } catch let stop as ScanStop {
            throw stop
        } catch {
            throw .malformed("\(error)")
        }
    }

    private func decompress(_ bytes: UnsafeRawBufferPointer) throws {
        let ceiling = min(
            limits.bytesPerLayer, max(64 << 20, compressedSize.multipliedReportingOverflow(by: limits.expansion).partialValue))
        try decompressor!.feed(bytes) { output in
            decompressedBytes += Int64(output.count)
            if decompressedBytes > ceiling {
                throw decompressedBytes > limits.bytesPerLayer
                    ? ScanStop.tooLarge(limits.bytesPerLayer) : ScanStop.expansion(limits.expansion)
            }
            try tar.feed(output)
            if membersBefore + layer.count > limits.members { throw ScanStop.tooManyMembers(limits.members) }
        }
    }

    /// The layer's members, after its last byte.
    public func finish() throws(ScanStop) -> LayeredFilesystem.Layer {
        // Under four bytes: not even a compression's magic number, let alone a tar header.
        if decompressor == nil, !prefix.isEmpty { throw .malformed("it is only \(prefix.count) bytes") }
        return layer
    }
}
