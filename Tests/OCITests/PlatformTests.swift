import Foundation
import OCI
import Testing

struct PlatformTests {
    @Test(arguments: [
        ("linux/arm64/v8", Platform(os: "linux", architecture: "arm64", variant: "v8")),
        ("linux/amd64", Platform(os: "linux", architecture: "amd64")),
        ("arm64", Platform(os: "linux", architecture: "arm64")),
        ("windows/amd64", Platform(os: "windows", architecture: "amd64")),
        ("windows(10.0.17763.5329)/amd64", Platform(os: "windows", architecture: "amd64", osVersion: "10.0.17763.5329")),
        ("Linux/AArch64", Platform(os: "Linux", architecture: "AArch64")),
        ("linux/arm/v7", Platform(os: "linux", architecture: "arm", variant: "v7")),
        ("x86_64", Platform(os: "linux", architecture: "x86_64")),
        ("unknown/unknown", Platform(os: "unknown", architecture: "unknown")),
    ])
    func parsesSpecifiers(text: String, expected: Platform) throws {
        #expect(try Platform(parsing: text) == expected)
    }

    @Test(arguments: [
        ("", "empty"),
        ("/", "empty component"),
        ("linux/", "empty component"),
        ("/amd64", "empty component"),
        ("linux//v7", "empty component"),
        ("linux/arm/v7/extra", "4 components"),
        ("linux", "operating system"),
        ("Windows", "operating system"),
        ("linux/amd 64", "may only contain"),
        ("linux/amd64/v\0", "may only contain"),
        ("linux/ärm64", "may only contain"),
        ("../amd64", "may only contain"),
        ("linux/-amd64", "may only contain"),
        ("linux/amd64/.", "may only contain"),
        ("linux/amd64/v8/", "4 components"),
        ("linux/%2e%2e", "may only contain"),
        ("windows(10 0)/amd64", "os version"),
        ("windows()/amd64", "os version"),
        (String(repeating: "a", count: 300), "255"),
    ])
    func refusesBadSpecifiers(text: String, reason: String) {
        let error = #expect(throws: PlatformError.self) { try Platform(parsing: text) }
        #expect(error?.input == text)
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "")")
        #expect(error?.description.hasPrefix("invalid platform") == true)
    }

    @Test(arguments: [
        (Platform(os: "linux", architecture: "arm64", variant: "v8"), "linux/arm64/v8"),
        (Platform(os: "linux", architecture: "amd64"), "linux/amd64"),
        (Platform(os: "windows", architecture: "amd64", osVersion: "10.0"), "windows/amd64"),
    ])
    func describesAsSpecifier(platform: Platform, text: String) {
        #expect(platform.description == text)
    }

    @Test(arguments: [
        (Platform(os: "unknown", architecture: "unknown"), true),
        (Platform(os: "linux", architecture: "unknown"), true),
        (Platform(os: "unknown", architecture: "amd64"), true),
        (Platform(os: "linux", architecture: "amd64"), false),
    ])
    func unknownPlatforms(platform: Platform, isUnknown: Bool) {
        #expect(platform.isUnknown == isUnknown)
    }

    @Test func codableWithSpecKeysOmittingNil() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bare = try encoder.encode(Platform(os: "linux", architecture: "amd64"))
        #expect(String(decoding: bare, as: UTF8.self) == #"{"architecture":"amd64","os":"linux"}"#)

        let full = Platform(os: "windows", architecture: "amd64", variant: "v3", osVersion: "10.0.1", osFeatures: ["win32k"])
        let json = try encoder.encode(full)
        #expect(
            String(decoding: json, as: UTF8.self)
                == #"{"architecture":"amd64","os":"windows","os.features":["win32k"],"os.version":"10.0.1","variant":"v3"}"#
        )
        #expect(try JSONDecoder().decode(Platform.self, from: json) == full)
    }

    @Test func decodingRequiresOSAndArchitecture() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Platform.self, from: Data(#"{"os":"linux"}"#.utf8))
        }
    }
}
