import Foundation
import OCI
import Testing

struct DigestTests {
    static let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// `sha256:` + `text` + zeros, 64 bytes after the colon.
    static func padded(_ text: String) -> String {
        "sha256:" + text + String(repeating: "0", count: 64 - text.utf8.count)
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("hello world", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
    ])
    func sha256OfKnownBytes(input: String, hex: String) {
        let digest = Digest.sha256(Data(input.utf8))
        #expect(digest.algorithm == "sha256")
        #expect(digest.encoded == hex)
        #expect(digest.description == "sha256:" + hex)
        #expect(Digest.sha256(Array(input.utf8)) == digest)
    }

    @Test(arguments: [
        empty,
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    ])
    func parsesValidDigests(text: String) throws {
        let digest = try Digest(parsing: text)
        #expect(digest.description == text)
        #expect(Digest(text) == digest)
        #expect(String(digest.encoded.count) == "64")
    }

    @Test(arguments: [
        ("", "empty"),
        ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "no algorithm"),
        ("sha256:", "64 hex"),
        (":e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "not supported"),
        ("SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "not supported"),
        ("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "not supported"),
        ("md5:d41d8cd98f00b204e9800998ecf8427e", "not supported"),
        ("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "uppercase hex"),
        ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", "64 hex"),
        ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", "64 hex"),
        ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g", "non-hex"),
        (DigestTests.padded("\0"), "non-hex"),
        (DigestTests.padded("../../etc/passwd"), "non-hex"),
        (DigestTests.padded("%2e%2e"), "non-hex"),
        (DigestTests.padded("é"), "non-hex"),
        (DigestTests.padded("😀"), "non-hex"),
        (" sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "not supported"),
        ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ", "64 hex"),
        (DigestTests.padded("sha256:"), "non-hex"),
        ("sha256+b64:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=", "not supported"),
    ])
    func refusesInvalidDigests(text: String, reason: String) {
        let error = #expect(throws: RegistryError.self) { try Digest(parsing: text) }
        #expect(error?.code == .digestInvalid)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
        #expect(Digest(text) == nil)
    }

    @Test func overlongInputIsRefusedWithAShortMessage() {
        let text = String(repeating: "a", count: 100_000)
        let error = #expect(throws: RegistryError.self) { try Digest(parsing: text) }
        #expect(error?.code == .digestInvalid)
        #expect((error?.message.count ?? .max) < 200)
    }

    @Test func codableAsASingleString() throws {
        let digest = try Digest(parsing: Self.empty)
        let json = try JSONEncoder().encode([digest])
        #expect(String(decoding: json, as: UTF8.self) == #"["\#(Self.empty)"]"#)
        #expect(try JSONDecoder().decode([Digest].self, from: json) == [digest])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Digest].self, from: Data(#"["sha256:abc"]"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Digest].self, from: Data("[42]".utf8))
        }
    }

    @Test func ordersByText() throws {
        let low = try Digest(parsing: "sha256:" + String(repeating: "0", count: 64))
        let high = try Digest(parsing: "sha256:" + String(repeating: "f", count: 64))
        #expect(low < high)
        #expect([high, low].sorted() == [low, high])
    }
}
