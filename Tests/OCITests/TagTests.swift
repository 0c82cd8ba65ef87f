import OCI
import Testing

struct TagTests {
    @Test(arguments: [
        "latest", "1.0", "v1.2.3-rc.1", "_private", "A", "9", "amd64-1.0", "UPPER_case.tag-1",
        "a" + String(repeating: "b", count: 127),
    ])
    func acceptsSpecTags(text: String) throws {
        let tag = try Tag(text)
        #expect(tag.value == text)
        #expect(tag.description == text)
    }

    @Test(arguments: [
        ("", "empty"),
        ("a" + String(repeating: "b", count: 128), "limit is 128"),
        (".hidden", "must start"),
        ("-flag", "must start"),
        ("..", "must start"),
        ("a/b", "only letters"),
        ("a:b", "only letters"),
        ("a@b", "only letters"),
        ("a b", "only letters"),
        ("a\0", "only letters"),
        ("a%2e", "only letters"),
        ("é", "must start"),
        ("vé", "only letters"),
        ("\n", "must start"),
    ])
    func refusesOtherTags(text: String, reason: String) {
        let error = #expect(throws: RegistryError.self) { try Tag(text) }
        #expect(error?.code == .tagInvalid)
        #expect(error?.code.rawValue == "TAG_INVALID")
        #expect(error?.code.status == 400)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }

    @Test func latestAndOrdering() throws {
        #expect(Tag.latest.value == "latest")
        #expect(try Tag("1.0") < Tag("1.1"))
    }
}
