import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A program that a real-software test needs is not installed. Real-software tests never skip
/// silently: they fail with this error, which says how to install what is missing.
public struct MissingProgram: Error, CustomStringConvertible, Sendable {
    public let name: String

    public init(name: String) {
        self.name = name
    }

    public var description: String {
        "\(name) is not installed: run `make test`, which installs docker-registry, skopeo and containerd"
    }
}

/// A failure of the harness itself or of a program it drives, with a readable message.
public struct HarnessError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The absolute path of `name`, searched on `PATH` and then in `/usr/sbin`, `/usr/bin`, `/sbin`, `/bin`
/// and `/usr/local/bin`. A name that contains a `/` is checked as it is.
/// - Throws: ``MissingProgram`` when it is nowhere to be found.
public func requireProgram(_ name: String) throws -> String {
    if name.contains("/") {
        if isExecutableFile(name) { return name }
        throw MissingProgram(name: name)
    }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    var directories = path.split(separator: ":").map(String.init).filter { !$0.isEmpty }
    for extra in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] where !directories.contains(extra) {
        directories.append(extra)
    }
    for directory in directories {
        let candidate = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        if isExecutableFile(candidate) { return candidate }
    }
    throw MissingProgram(name: name)
}

private func isExecutableFile(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
        && FileManager.default.isExecutableFile(atPath: path)
}

/// A TCP port on 127.0.0.1 that was free a moment ago: binds 127.0.0.1:0, reads the port the kernel
/// chose, and closes the socket.
public func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw HarnessError("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else { throw HarnessError("bind(127.0.0.1:0) failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(fd, $0, &length)
        }
    }
    guard named == 0 else { throw HarnessError("getsockname() failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A new, empty, uniquely named directory under the system temporary directory (`/tmp`).
/// The name is kept short because containerd puts Unix sockets inside such folders.
public func makeTemporaryDirectory(prefix: String = "archway-test") throws -> URL {
    let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    let pattern = (base.hasSuffix("/") ? base : base + "/") + prefix + "-XXXXXX"
    var template = Array(pattern.utf8CString)
    let created = template.withUnsafeMutableBufferPointer { buffer -> Bool in
        mkdtemp(buffer.baseAddress!) != nil
    }
    guard created else { throw HarnessError("mkdtemp(\(prefix)) failed: errno \(errno)") }
    let path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return URL(fileURLWithPath: path, isDirectory: true)
}

/// Runs `body` with a fresh temporary directory and removes the directory afterwards, also when
/// `body` throws.
public func withTemporaryDirectory<T>(
    prefix: String = "archway-test",
    isolation: isolated (any Actor)? = #isolation,
    _ body: (URL) async throws -> T
) async throws -> T {
    let directory = try makeTemporaryDirectory(prefix: prefix)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// Starts a resource, runs `body` with it, and closes it whether `body` succeeded or threw.
public func withStarted<Resource, T>(
    isolation: isolated (any Actor)? = #isolation,
    _ start: () async throws -> Resource,
    close: (Resource) async -> Void,
    _ body: (Resource) async throws -> T
) async throws -> T {
    let resource = try await start()
    do {
        let result = try await body(resource)
        await close(resource)
        return result
    } catch {
        await close(resource)
        throw error
    }
}
