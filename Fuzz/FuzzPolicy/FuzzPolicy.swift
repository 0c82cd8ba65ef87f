import Foundation
import FuzzSupport
import OCI
import Policies

/// libFuzzer entry: policy files, which operators write by hand, and the decisions they make.
func fuzzPolicy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let loader = PolicyLoader(upstreams: ["docker.io", "ghcr.io", "registry.internal:5000"])
    guard let rules = try? loader.parse(text, file: "fuzz.yaml") else { return 0 }
    let set = PolicySet(rules: rules)
    let tag = Tag.latest
    for repository in ["docker.io/library/nginx", "ghcr.io/org/app", "docker.io/a/b/c"] {
        if case .synthesize(let rule) = set.decision(repository: repository, tag: tag) {
            for member in rule.members { _ = member.expand(repository: repository, tag: tag) }
        }
    }
    return 0
}

@main
enum Fuzzer {
    static func main() {
        exit(runFuzzer { data, size in data.map { fuzzPolicy($0, size) } ?? 0 })
    }
}
