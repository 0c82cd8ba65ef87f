import Foundation
import FuzzSupport
import OCI
import ProxyServer

/// libFuzzer entry: request paths and image references, the first things a client controls.
func fuzzReference(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? RegistryRoute(path: text)
    _ = try? RegistryRoute(path: "/v2/" + text)
    _ = try? Reference(parsing: text)
    _ = try? ManifestReference(parsing: text)
    _ = try? RepositoryName(text)
    _ = try? Tag(text)
    _ = Digest(text)
    _ = try? Platform(parsing: text).normalized()
    return 0
}

@main
enum Fuzzer {
    static func main() {
        exit(runFuzzer { data, size in data.map { fuzzReference($0, size) } ?? 0 })
    }
}
