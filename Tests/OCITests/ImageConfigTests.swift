import Foundation
import OCI
import Testing

struct ImageConfigTests {
    @Test(arguments: [
        (
            #"{"architecture":"amd64","os":"linux","config":{"Env":["A=B"]},"rootfs":{"type":"layers","diff_ids":[]}}"#,
            Platform(os: "linux", architecture: "amd64")
        ),
        (#"{"architecture":"arm64","os":"linux","variant":"v8"}"#, Platform(os: "linux", architecture: "arm64", variant: "v8")),
        (
            #"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.5329","os.features":["win32k"]}"#,
            Platform(os: "windows", architecture: "amd64", osVersion: "10.0.17763.5329", osFeatures: ["win32k"])
        ),
    ])
    func readsThePlatform(json: String, platform: Platform) throws {
        let config = try ImageConfig.decode(Data(json.utf8))
        #expect(config.platform == platform)
    }

    @Test(arguments: [
        ("", "not valid JSON"),
        ("not json", "not valid JSON"),
        ("[]", "wrong type"),
        (#"{"os":"linux"}"#, "architecture"),
        (#"{"architecture":"amd64"}"#, "os"),
        (#"{"architecture":1,"os":"linux"}"#, "architecture"),
    ])
    func refusesConfigsWithoutAPlatform(json: String, reason: String) {
        let error = #expect(throws: RegistryError.self) { try ImageConfig.decode(Data(json.utf8)) }
        #expect(error?.code == .manifestInvalid)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }

    @Test func encodesWithSpecKeys() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let config = ImageConfig(architecture: "amd64", os: "windows", osVersion: "10.0")
        #expect(
            String(decoding: try encoder.encode(config), as: UTF8.self) == #"{"architecture":"amd64","os":"windows","os.version":"10.0"}"#)
    }
}
