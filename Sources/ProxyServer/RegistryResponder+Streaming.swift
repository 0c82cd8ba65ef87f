import Hummingbird
import NIOCore
import RegistryClient

extension RegistryResponder {
    /// How many bytes may be queued towards a connection before the writer waits for its event
    /// loop to catch up.
    static let writeWindow = 1 << 20

    /// Copies a body to the client with bounded memory.
    ///
    /// A write only waits while the socket is not writable; writes issued faster than the event
    /// loop runs them would queue up without bound (hundreds of MiB for a fast upstream). So every
    /// `writeWindow` bytes the writer waits for a no-op on the event loop, which runs after every
    /// write queued before it.
    static func stream(_ body: ByteStream, to writer: inout any ResponseBodyWriter, eventLoop: any EventLoop) async throws {
        var queued = 0
        for try await chunk in body {
            queued += chunk.readableBytes
            try await writer.write(chunk)
            if queued >= writeWindow {
                queued = 0
                try await eventLoop.submit {}.get()
            }
        }
    }
}
