import Foundation
import FuzzSupport
import OCI

/// libFuzzer entry: what upstreams answer: manifests, indexes, image configs, error bodies.
func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    for mediaType in [nil, MediaType.ociManifest, .ociIndex, .dockerManifest, .dockerManifestList] as [MediaType?] {
        if let manifest = try? Manifest(bytes: bytes, mediaType: mediaType, expected: nil) {
            switch try? manifest.decoded() {
            case .image(let image): _ = image.layers.map(\.digest)
            case .index(let index): _ = index.manifests.compactMap { $0.platform?.normalized() }
            case nil: break
            }
        }
    }
    _ = try? ImageConfig.decode(bytes).platform.normalized()
    _ = RegistryError.decodeBody(bytes)
    return 0
}

@main
enum Fuzzer {
    static func main() {
        exit(runFuzzer { data, size in data.map { fuzzManifest($0, size) } ?? 0 })
    }
}
