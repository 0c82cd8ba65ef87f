import Foundation
import OCI
import Testing

/// What a hostile or broken upstream might send as a manifest: refused with MANIFEST_INVALID,
/// never a crash.
@Suite struct HostileManifestTests {
    static func nested(_ depth: Int) -> Data {
        Data(
            ("{\"schemaVersion\":2,\"manifests\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}").utf8
        )
    }

    @Test(arguments: [100, 10_000, 200_000])
    func deeplyNestedJSONIsRefused(depth: Int) {
        let bytes = Self.nested(depth)
        for mediaType in [nil, MediaType.ociIndex] as [MediaType?] {
            do {
                let manifest = try Manifest(bytes: bytes, mediaType: mediaType, expected: nil)
                _ = try manifest.decoded()
                Issue.record("accepted a manifest nested \(depth) deep")
            } catch {
                #expect(error.code == .manifestInvalid, "\(error)")
            }
        }
        #expect(RegistryError.decodeBody(bytes) == nil)
        #expect(throws: RegistryError.self) { _ = try ImageConfig.decode(bytes) }
    }

    @Test(arguments: ["", "null", "[]", "\"text\"", "{\"manifests\":{}}", "{\"layers\":[{\"digest\":\"md5:x\"}]}", "\u{FEFF}{}"])
    func garbageIsRefused(text: String) {
        do {
            _ = try Manifest(bytes: Data(text.utf8), mediaType: nil, expected: nil).decoded()
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == .manifestInvalid, "\(error)")
        }
    }

    @Test func oversizedManifestsAreRefused() {
        let bytes = Data(repeating: UInt8(ascii: " "), count: Manifest.maximumSize + 1)
        #expect(throws: RegistryError.self) { _ = try Manifest(bytes: bytes, mediaType: .ociManifest, expected: nil) }
    }
}
