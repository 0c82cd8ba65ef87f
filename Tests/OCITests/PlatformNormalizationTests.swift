import OCI
import Testing

struct PlatformNormalizationTests {
    /// containerd's table, plus the i486..i686 spellings.
    @Test(arguments: [
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64"),
        ("linux/arm64/v8.0", "linux/arm64"),
        ("linux/arm64/9", "linux/arm64/v9"),
        ("linux/aarch64/v9.0", "linux/arm64/v9"),
        ("linux/arm64/v8.2", "linux/arm64/v8.2"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/armhf/v6", "linux/arm/v7"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/6", "linux/arm/v6"),
        ("linux/arm/5", "linux/arm/v5"),
        ("linux/arm/8", "linux/arm/v8"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/x86-64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/i386", "linux/386"),
        ("linux/i486", "linux/386"),
        ("linux/i586", "linux/386"),
        ("linux/i686", "linux/386"),
        ("Linux/X86_64", "linux/amd64"),
        ("LINUX/ARM64/V8", "linux/arm64"),
        ("macos/arm64", "darwin/arm64"),
        ("linux/ppc64le", "linux/ppc64le"),
        ("linux/s390x", "linux/s390x"),
        ("linux/riscv64", "linux/riscv64"),
    ])
    func normalizesLikeContainerd(written: String, normalized: String) throws {
        #expect(try Platform(parsing: written).normalized().description == normalized)
    }

    @Test func emptyVariantBecomesNilAndOSFieldsAreKept() {
        let platform = Platform(os: "windows", architecture: "amd64", variant: "", osVersion: "10.0", osFeatures: ["win32k"])
        #expect(platform.normalized() == Platform(os: "windows", architecture: "amd64", osVersion: "10.0", osFeatures: ["win32k"]))
    }

    @Test(arguments: [
        (Platform(os: "linux", architecture: "aarch64"), Platform(os: "linux", architecture: "arm64", variant: "v8"), true),
        (Platform(os: "linux", architecture: "arm"), Platform(os: "linux", architecture: "arm", variant: "v7"), true),
        (Platform(os: "linux", architecture: "armhf"), Platform(os: "linux", architecture: "arm", variant: "7"), true),
        (Platform(os: "linux", architecture: "x86_64"), Platform(os: "linux", architecture: "amd64"), true),
        (Platform(os: "Linux", architecture: "AMD64"), Platform(os: "linux", architecture: "amd64"), true),
        (Platform(os: "linux", architecture: "arm", variant: "v6"), Platform(os: "linux", architecture: "arm", variant: "v7"), false),
        (Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64"), false),
        (Platform(os: "linux", architecture: "amd64"), Platform(os: "windows", architecture: "amd64"), false),
        (Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "amd64", variant: "v3"), false),
        (
            Platform(os: "windows", architecture: "amd64", osVersion: "10.0.17763"),
            Platform(os: "windows", architecture: "amd64"), true
        ),
        (
            Platform(os: "windows", architecture: "amd64", osVersion: "10.0.17763"),
            Platform(os: "windows", architecture: "amd64", osVersion: "10.0.20348"), false
        ),
        (
            Platform(os: "linux", architecture: "amd64", osFeatures: ["a"]),
            Platform(os: "linux", architecture: "amd64", osFeatures: ["b"]), true
        ),
    ])
    func matchesAfterNormalization(lhs: Platform, rhs: Platform, matches: Bool) {
        #expect(lhs.matches(rhs) == matches)
        #expect(rhs.matches(lhs) == matches)
    }
}
