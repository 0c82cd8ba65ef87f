import Foundation
import FuzzSupport
import OCI

/// libFuzzer entry: `Range` headers, against blobs of several lengths.
func fuzzRange(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for length in [0, 1, 1000, Int64.max / 2] as [Int64] {
        if case .satisfiable(let range) = ByteRange.parse(text, length: length) {
            precondition(range.lowerBound >= 0 && range.upperBound < length && range.lowerBound <= range.upperBound)
            _ = range.contentRange(length: length)
        }
    }
    return 0
}

@main
enum Fuzzer {
    static func main() {
        exit(runFuzzer { data, size in data.map { fuzzRange($0, size) } ?? 0 })
    }
}
