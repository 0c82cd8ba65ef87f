import Foundation
import NIOCore
import OCI

/// An open file, closed when the last holder lets go. Positional reads and writes (`pread`,
/// `pwrite`) let one descriptor serve a writer and any number of readers at once.
final class FileDescriptor: Sendable {
    let fd: Int32

    init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(StorageError) -> FileDescriptor {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw StorageError.system("open \(path)", errno) }
        return FileDescriptor(fd: fd)
    }

    /// Writes all of `buffer` at `offset`.
    func write(_ buffer: ByteBuffer, at offset: Int64) throws(StorageError) {
        var offset = offset
        var remaining = buffer
        while remaining.readableBytes > 0 {
            let written = remaining.withUnsafeReadableBytes { bytes in
                pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw StorageError.system("write", errno)
            }
            remaining.moveReaderIndex(forwardBy: written)
            offset += Int64(written)
        }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    func read(count: Int, at offset: Int64) throws(StorageError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var total = 0
        while total < count {
            let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - total) { bytes in
                pread(fd, bytes.baseAddress, count - total, off_t(offset + Int64(total)))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw StorageError.system("read", errno)
            }
            if got == 0 { break }
            total += got
        }
        return buffer
    }

    func synchronize() throws(StorageError) {
        guard fdatasync(fd) == 0 else { throw StorageError.system("fdatasync", errno) }
    }

    func size() throws(StorageError) -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StorageError.system("fstat", errno) }
        return Int64(info.st_size)
    }
}

/// The storage folder failed Archway: a full disk, a permission, a vanished file.
public enum StorageError: Error, Hashable, CustomStringConvertible {
    case system(String, Int32)
    case digestMismatch(expected: String, actual: String, bytes: Int64)
    case lengthMismatch(expected: Int64, actual: Int64)
    /// The store is shutting down and starts no download.
    case closed
    /// A store the content lives in (object storage) cannot be reached or refused the request.
    case unavailable(String)

    public var description: String {
        switch self {
        case .system(let what, let code): "\(what): \(String(cString: strerror(code)))"
        case .digestMismatch(let expected, let actual, let bytes):
            "content does not match its digest: expected \(expected), got \(actual) over \(bytes) bytes"
        case .lengthMismatch(let expected, let actual): "content length \(actual) differs from the announced \(expected)"
        case .closed: "the store is shutting down and starts no download"
        case .unavailable(let reason): reason
        }
    }
}

extension StorageError: DependencyFailure {
    public var failedDependency: String? {
        if case .unavailable = self { "the cache's storage" } else { nil }
    }
}
