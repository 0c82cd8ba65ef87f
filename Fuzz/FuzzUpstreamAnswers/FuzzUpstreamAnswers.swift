import Foundation
import FuzzSupport
import OCI
import RegistryClient

/// libFuzzer entry: what an upstream answers besides manifests: error bodies, token grants, tag
/// lists, and its `WWW-Authenticate` and `Link` headers.
func fuzzUpstreamAnswers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    _ = RegistryError.decodeBody(bytes)?.map(\.description)
    _ = UpstreamAnswer.tokenGrant(bytes)
    _ = UpstreamAnswer.tagPage(bytes)?.tags.count
    let text = String(decoding: bytes, as: UTF8.self)
    _ = AuthChallenge(header: text)?.parameters["realm"]
    _ = UpstreamAnswer.hasNextPage(text.split(separator: "\n").map(String.init))
    return 0
}

@main
enum Fuzzer {
    static func main() {
        exit(runFuzzer { data, size in data.map { fuzzUpstreamAnswers($0, size) } ?? 0 })
    }
}
