import Foundation
import Synchronization

/// A loopback server that sends back every byte it receives, counting the connections it
/// accepted: the host behind a tunnel, and the witness that nothing was dialled.
public final class EchoServer: Sendable {
    public let port: Int
    private let listener: Int32
    private let accepted = Mutex<[Int32]>([])

    public init() throws {
        let (fd, port) = try listenOnLoopback()
        self.port = port
        self.listener = fd
        let thread = Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }  // closed by stop()
                accepted.withLock { $0.append(client) }
                Thread {
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let count = read(client, &buffer, buffer.count)
                        guard count > 0 else { break }
                        var sent = 0
                        while sent < count {
                            let written = buffer.withUnsafeBytes { write(client, $0.baseAddress! + sent, count - sent) }
                            guard written > 0 else { return }
                            sent += written
                        }
                    }
                    shutdown(client, Int32(SHUT_WR))
                }.start()
            }
        }
        thread.start()
    }

    /// Connections accepted so far.
    public var connections: Int { accepted.withLock { $0.count } }

    public func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for client in accepted.withLock({ $0 }) { shutdown(client, Int32(SHUT_RDWR)) }
    }
}
