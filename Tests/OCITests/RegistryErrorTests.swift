import Foundation
import Testing

@testable import OCI

struct RegistryErrorTests {
    @Test(arguments: [
        (RegistryError.Code.blobUnknown, "BLOB_UNKNOWN", 404),
        (.blobUploadInvalid, "BLOB_UPLOAD_INVALID", 400),
        (.blobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
        (.digestInvalid, "DIGEST_INVALID", 400),
        (.manifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 404),
        (.manifestInvalid, "MANIFEST_INVALID", 400),
        (.manifestUnknown, "MANIFEST_UNKNOWN", 404),
        (.nameInvalid, "NAME_INVALID", 400),
        (.nameUnknown, "NAME_UNKNOWN", 404),
        (.sizeInvalid, "SIZE_INVALID", 400),
        (.unauthorized, "UNAUTHORIZED", 401),
        (.denied, "DENIED", 403),
        (.unsupported, "UNSUPPORTED", 405),
        (.tooManyRequests, "TOOMANYREQUESTS", 429),
        (.tagInvalid, "TAG_INVALID", 400),
        (.unavailable, "UNAVAILABLE", 503),
        (.rangeInvalid, "RANGE_INVALID", 416),
        (RegistryError.Code(rawValue: "SOMETHING_NEW"), "SOMETHING_NEW", 500),
        (RegistryError.Code(rawValue: ""), "", 500),
    ])
    func codesAndStatuses(code: RegistryError.Code, wire: String, status: Int) {
        #expect(code.rawValue == wire)
        #expect(code.status == status)
        #expect(RegistryError.Code(rawValue: wire) == code)
    }

    @Test func bodyIsCompactSpecJSON() {
        let body = RegistryError.body([
            RegistryError(.manifestUnknown, "manifest unknown"),
            RegistryError(.denied, "no \"access\"\n\0", detail: "tag/1"),
        ])
        #expect(
            String(decoding: body, as: UTF8.self)
                == #"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},"#
                + #"{"code":"DENIED","message":"no \"access\"\n\u0000","detail":"tag/1"}]}"#
        )
        #expect(String(decoding: RegistryError.body([]), as: UTF8.self) == #"{"errors":[]}"#)
    }

    @Test(arguments: [
        [RegistryError(.manifestUnknown, "manifest unknown")],
        [RegistryError(.blobUnknown, "blob unknown", detail: "sha256:abc"), RegistryError(.unsupported, "")],
        [RegistryError(.nameInvalid, "ünïcödé 😀 \u{2028} \\ / \t", detail: #"{"not":"parsed"}"#)],
        [RegistryError(RegistryError.Code(rawValue: "CUSTOM"), String(repeating: "x", count: 10_000))],
    ])
    func bodyRoundTrips(errors: [RegistryError]) throws {
        let body = RegistryError.body(errors)
        #expect(RegistryError.decodeBody(body) == errors)
        // And it is JSON any parser reads.
        _ = try JSONSerialization.jsonObject(with: body)
    }

    @Test(arguments: [
        (
            #"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"library/foo","Action":"pull"}]}]}"#,
            [
                RegistryError(
                    .unauthorized, "authentication required", detail: #"[{"Action":"pull","Name":"library/foo","Type":"repository"}]"#)
            ]
        ),
        (
            #"{"errors":[{"code":"DENIED","message":"x","detail":{"b":[1,2.5,true,null],"a":"s"}}]}"#,
            [RegistryError(.denied, "x", detail: #"{"a":"s","b":[1,2.5,true,null]}"#)]
        ),
        (#"{"errors":[{"code":"DENIED","detail":null}]}"#, [RegistryError(.denied, "")]),
        (#"{"errors":[{"code":"DENIED","message":"m","detail":42}]}"#, [RegistryError(.denied, "m", detail: "42")]),
        (
            #"{"errors":[{"message":"no code"},{"code":7},{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
            [RegistryError(.tooManyRequests, "slow down")]
        ),
        (
            #"  {"errors" : [ {"code":"NAME_UNKNOWN", "message":"repository name not known to registry"} ] , "extra": 1}"#,
            [RegistryError(.nameUnknown, "repository name not known to registry")]
        ),
    ])
    func decodesUpstreamBodies(json: String, errors: [RegistryError]) {
        #expect(RegistryError.decodeBody(Data(json.utf8)) == errors)
    }

    @Test(arguments: [
        "", "not json", "<html>502 Bad Gateway</html>", "[]", "null", #"{"errors":[]}"#, #"{"errors":{}}"#,
        #"{"details":"quay style"}"#, #"{"errors":[{"message":"no code"}]}"#, "{\"errors\":[\0]}",
    ])
    func refusesOtherBodies(text: String) {
        #expect(RegistryError.decodeBody(Data(text.utf8)) == nil)
    }

    /// A hostile upstream's error bodies: deep nesting is refused at a fixed depth, and a long
    /// body costs time in proportion to its length (the old decoder took minutes on 62 KB).
    @Test func hostileBodiesAreParsedInOnePassWithADepthLimit() throws {
        let deep =
            #"{"errors":[{"code":"DENIED","message":"m","detail":"# + String(repeating: "[", count: 31_000)
            + String(repeating: "]", count: 31_000) + "}]}"
        #expect(RegistryError.decodeBody(Data(deep.utf8)) == nil)
        let deepObjects =
            #"{"errors":[{"code":"DENIED","detail":"# + String(repeating: #"{"a":"#, count: 10_000)
            + "1" + String(repeating: "}", count: 10_000) + "}]}"
        #expect(RegistryError.decodeBody(Data(deepObjects.utf8)) == nil)
        // 17 objects nested 500 deep (inside Foundation's limit, where the Codable reader took time
        // in the cube of the depth): refused at the 33rd level, at once.
        let chain = String(repeating: #"{"a":"#, count: 500) + "1" + String(repeating: "}", count: 500)
        let siblings = #"{"errors":[{"code":"DENIED","detail":["# + Array(repeating: chain, count: 17).joined(separator: ",") + "]}]}"
        #expect(RegistryError.decodeBody(Data(siblings.utf8)) == nil)
        // Wide is fine: 60 KB of detail at depth 3 keeps its error and its detail.
        let items = (0..<6_000).map { "[\($0)]" }.joined(separator: ",")
        let wide = #"{"errors":[{"code":"DENIED","message":"m","detail":["# + items + "]}]}"
        let decoded = try #require(RegistryError.decodeBody(Data(wide.utf8)))
        #expect(decoded.first?.code == .denied)
        #expect(decoded.first?.detail?.hasPrefix("[[0],[1],") == true)
    }

    @Test(arguments: [
        (#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#, JSONValue.string("a\"b\\c/d\né😀")),
        ("-12", .integer(-12)), ("2.5e3", .number(2500)), (" [true,false,null] ", .array([.bool(true), .bool(false), .null])),
        (#"{"k":{"n":[]}}"#, .object(["k": .object(["n": .array([])])])),
    ])
    func parsesJSON(text: String, expected: JSONValue) throws {
        #expect(try JSONValue.parse(Data(text.utf8)) == expected)
    }

    @Test(arguments: [
        "", "[", "[1,]", "{\"a\"}", "{\"a\":1,}", "tru", "01x", "\"\\ud800\"", "\"\u{01}\"", "1 2", "-", "\"\\x\"", "1e999",
        String(repeating: "[", count: 33) + String(repeating: "]", count: 33),
    ])
    func refusesInvalidJSON(text: String) {
        #expect(throws: JSONValue.Invalid.self) { try JSONValue.parse(Data(text.utf8)) }
    }

    @Test func describesItself() {
        #expect(RegistryError(.manifestUnknown, "gone").description == "MANIFEST_UNKNOWN: gone")
        #expect(RegistryError(.denied, "no", detail: "why").description == "DENIED: no (why)")
    }
}
