import Foundation
import Synchronization

/// A loopback server that accepts connections and never answers: the upstream that hangs.
public final class StallingServer: Sendable {
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
            }
        }
        thread.start()
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Connections accepted so far.
    public var connections: Int { accepted.withLock { $0.count } }

    public func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for client in accepted.withLock({ $0 }) { close(client) }
    }
}

/// A listening TCP socket on 127.0.0.1 with a port the kernel picked.
func listenOnLoopback() throws -> (descriptor: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0, listen(fd, 64) == 0 else {
        close(fd)
        throw HarnessError("cannot listen: \(errno)")
    }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}
