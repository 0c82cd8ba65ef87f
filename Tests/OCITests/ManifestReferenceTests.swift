import OCI
import Testing

struct ManifestReferenceTests {
    @Test(arguments: ["latest", "1.0", "_x", "amd64-1.0"])
    func tags(text: String) throws {
        let reference = try ManifestReference(parsing: text)
        #expect(reference == .tag(try Tag(text)))
        #expect(reference.tag?.value == text)
        #expect(reference.digest == nil)
        #expect(reference.description == text)
    }

    @Test func digests() throws {
        let reference = try ManifestReference(parsing: DigestTests.empty)
        #expect(reference == .digest(try Digest(parsing: DigestTests.empty)))
        #expect(reference.tag == nil)
        #expect(reference.description == DigestTests.empty)
    }

    @Test(arguments: [
        ("", RegistryError.Code.tagInvalid),
        ("..", .tagInvalid),
        ("a/b", .tagInvalid),
        ("%2e%2e", .tagInvalid),
        ("sha256:abc", .digestInvalid),
        ("sha512:" + String(repeating: "0", count: 128), .digestInvalid),
        (":", .digestInvalid),
        ("latest:", .digestInvalid),
        ("SHA256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", .digestInvalid),
    ])
    func refusesInvalidReferences(text: String, code: RegistryError.Code) {
        let error = #expect(throws: RegistryError.self) { try ManifestReference(parsing: text) }
        #expect(error?.code == code)
    }
}
