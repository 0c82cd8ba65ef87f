import NIOCore

/// A body that arrives chunk by chunk: an upstream transfer, a file, or bytes in memory.
///
/// It is consumed once. Dropping it before the end cancels whatever produces it.
public struct ByteStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let nextChunk: @Sendable () async throws -> ByteBuffer?

        public mutating func next() async throws -> ByteBuffer? {
            try await nextChunk()
        }
    }

    private let makeNext: @Sendable () -> @Sendable () async throws -> ByteBuffer?

    /// A stream whose chunks come from calling `makeNext()`'s result until it returns nil.
    public init(_ makeNext: @escaping @Sendable () -> @Sendable () async throws -> ByteBuffer?) {
        self.makeNext = makeNext
    }

    /// A stream over bytes already in memory, in one chunk.
    public init(_ buffer: ByteBuffer) {
        self.init {
            let box = OnceBox(buffer)
            return { box.take() }
        }
    }

    public static var empty: ByteStream { ByteStream(ByteBuffer()) }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(nextChunk: makeNext())
    }

    /// Collects the whole body, refusing one larger than `limit` bytes.
    public func collect(upTo limit: Int) async throws -> ByteBuffer {
        var result = ByteBuffer()
        for try await chunk in self {
            guard result.readableBytes + chunk.readableBytes <= limit else {
                throw BodyTooLarge(limit: limit)
            }
            var chunk = chunk
            result.writeBuffer(&chunk)
        }
        return result
    }
}

/// A body exceeded the size Archway accepts for it.
public struct BodyTooLarge: Error, Hashable, CustomStringConvertible {
    public let limit: Int
    public var description: String { "body larger than \(limit) bytes" }
}
