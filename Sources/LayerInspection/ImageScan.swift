import Foundation

/// The scan of one image, layer after layer, bottom first: each layer's (compressed) bytes are
/// fed as they are read, and the image's filesystem grows one layer at a time. It can move
/// between threads (it is fed on a worker thread): every access takes its lock, which is why the
/// `Sendable` conformance is checked by hand rather than by the compiler (the decompressors and
/// the tar reader are classes over C state).
public final class ImageScan: @unchecked Sendable {
    private let lock = NSLock()
    private var filesystem = LayeredFilesystem()
    private var layer: LayerScanner?
    private var decompressed: Int64 = 0
    public let limits: ScanLimits

    public init(limits: ScanLimits = ScanLimits()) {
        self.limits = limits
    }

    /// Starts the next layer, of `compressedSize` bytes.
    public func startLayer(compressedSize: Int64) {
        lock.withLock {
            layer = LayerScanner(compressedSize: compressedSize, membersBefore: filesystem.nodes.count, limits: limits)
        }
    }

    /// The next bytes of the current layer.
    public func feed(_ bytes: UnsafeRawBufferPointer) throws(ScanStop) {
        lock.lock()
        defer { lock.unlock() }
        guard let layer else { return }
        let before = layer.decompressedBytes
        defer { decompressed += layer.decompressedBytes - before }
        try layer.feed(bytes)
        if decompressed + layer.decompressedBytes - before > limits.bytesPerImage { throw .imageTooLarge(limits.bytesPerImage) }
    }

    /// Puts the current layer on the filesystem after its last byte.
    public func finishLayer() throws(ScanStop) {
        lock.lock()
        defer { lock.unlock() }
        guard let current = layer else { return }
        layer = nil
        filesystem.apply(try current.finish())
    }

    /// Decompressed bytes read so far, all layers.
    public var decompressedBytes: Int64 { lock.withLock { decompressed } }

    /// What runs when the image starts, and what it is.
    public func report(for execution: ImageExecution) -> BinaryReport {
        lock.withLock { filesystem.report(for: execution) }
    }
}
