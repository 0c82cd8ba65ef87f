import Foundation
import FuzzSupport
import LayerInspection

/// libFuzzer entry: what a layer's bytes can be: gzip, zstd or plain tar, well formed or not,
/// fed in two pieces, then followed from an entrypoint through links and scripts.
func fuzzLayer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let scan = ImageScan(limits: ScanLimits(bytesPerLayer: 16 << 20, expansion: 100, members: 10_000))
    scan.startLayer(compressedSize: Int64(size))
    let middle = size / 2
    do {
        try scan.feed(UnsafeRawBufferPointer(rebasing: bytes[0..<middle]))
        try scan.feed(UnsafeRawBufferPointer(rebasing: bytes[middle..<size]))
        try scan.finishLayer()
    } catch {
        return 0
    }
    for execution in [
        ImageExecution(entrypoint: ["/app/server"]), ImageExecution(cmd: ["sh"]),
        ImageExecution(entrypoint: ["./run"], workingDir: "/srv"),
    ] {
        _ = scan.report(for: execution)
    }
    return 0
}

@main
enum Fuzzer {
    static func main() {
        exit(runFuzzer { data, size in data.map { fuzzLayer($0, size) } ?? 0 })
    }
}
