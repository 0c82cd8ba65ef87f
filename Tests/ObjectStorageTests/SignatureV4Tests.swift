import Foundation
import OCI
import Testing

@testable import ObjectStorage

/// AWS's published Signature Version 4 vectors (`SigV4Suite/`), each signed by header and as a
/// presigned URL, compared at every step: canonical request, string to sign, signature.
@Suite struct SignatureV4Tests {
    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("SigV4Suite")

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: suite.path)) ?? []).filter { !$0.hasSuffix(".md") }.sorted()
    }

    /// One vector: its request and context, and what signing must give.
    struct Vector {
        let name: String
        let request: SignatureV4.Request
        let body: Data
        let signer: SignatureV4
        let date: Date
        let expires: Int
        let signsBody: Bool
        let signsSessionToken: Bool

        init(_ name: String) throws {
            self.name = name
            let folder = SignatureV4Tests.suite.appendingPathComponent(name)
            let context = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("context.json"))) as? [String: Any])
            let credentials = try #require(context["credentials"] as? [String: String])
            let accessKey = try #require(credentials["access_key_id"])
            let secretKey = try #require(credentials["secret_access_key"])
            let region = try #require(context["region"] as? String)
            let service = try #require(context["service"] as? String)
            let timestamp = try #require(context["timestamp"] as? String)
            signer = SignatureV4(
                credentials: AWSCredentials(accessKeyID: accessKey, secretAccessKey: secretKey, sessionToken: credentials["token"]),
                region: region,
                service: service,
                normalizesPath: context["normalize"] as? Bool ?? true
            )
            date = try #require(ISO8601DateFormatter().date(from: timestamp))
            expires = context["expiration_in_seconds"] as? Int ?? 3600
            signsBody = context["sign_body"] as? Bool ?? false
            signsSessionToken = !(context["omit_session_token"] as? Bool ?? false)
            (request, body) = try Self.parse(try Data(contentsOf: folder.appendingPathComponent("request.txt")))
        }

        /// `METHOD target HTTP/1.1`, header lines (a line starting with a space continues the
        /// previous value), a blank line, the body.
        static func parse(_ data: Data) throws -> (SignatureV4.Request, Data) {
            let text = try #require(String(data: data, encoding: .utf8))
            let (head, body) =
                text.range(of: "\n\n").map { (String(text[..<$0.lowerBound]), Data(text[$0.upperBound...].utf8)) } ?? (text, Data())
            var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let requestLine = lines.removeFirst()
            let method = String(requestLine.prefix { $0 != " " })
            let target = String(requestLine.dropFirst(method.count + 1).dropLast(" HTTP/1.1".count))
            let path = String(target.prefix { $0 != "?" })
            var query: [(name: String, value: String)] = []
            if target.count > path.count {
                for pair in target.dropFirst(path.count + 1).split(separator: "&") {
                    let name = String(pair.prefix { $0 != "=" })
                    let value = String(pair.dropFirst(min(pair.count, name.count + 1)))
                    query.append((name.removingPercentEncoding ?? name, value.removingPercentEncoding ?? value))
                }
            }
            var headers: [(name: String, value: String)] = []
            for line in lines where !line.isEmpty {
                if line.first == " " || line.first == "\t", let last = headers.popLast() {
                    headers.append((last.name, last.value + " " + line))
                } else if let colon = line.firstIndex(of: ":") {
                    headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
                }
            }
            return (SignatureV4.Request(method: method, path: path, query: query, headers: headers), body)
        }

        func expected(_ file: String) throws -> String {
            try String(contentsOf: SignatureV4Tests.suite.appendingPathComponent(name).appendingPathComponent(file), encoding: .utf8)
        }
    }

    @Test func theSuiteIsThere() {
        #expect(Self.cases.count == 38, "\(Self.cases)")
    }

    /// Signed by the `Authorization` header, or as a presigned URL (the files' prefix).
    enum Mode: String, CaseIterable {
        case header
        case query
    }

    @Test(arguments: cases, Mode.allCases)
    func everyVectorAtEveryStep(name: String, mode: Mode) throws {
        let vector = try Vector(name)
        let payloadHash = Digest.sha256(vector.body).encoded
        let signature =
            switch mode {
            case .header:
                vector.signer.sign(
                    vector.request, payloadHash: payloadHash, sendsPayloadHash: vector.signsBody, date: vector.date,
                    signsSessionToken: vector.signsSessionToken)
            case .query:
                vector.signer.presign(
                    vector.request, payloadHash: payloadHash, date: vector.date, expires: vector.expires,
                    signsSessionToken: vector.signsSessionToken)
            }
        #expect(signature.canonicalRequest == (try vector.expected("\(mode.rawValue)-canonical-request.txt")))
        #expect(signature.stringToSign == (try vector.expected("\(mode.rawValue)-string-to-sign.txt")))
        #expect(signature.signature == (try vector.expected("\(mode.rawValue)-signature.txt")))
        switch mode {
        case .header:
            #expect(signature.headers.last { $0.name == "Authorization" }?.value.hasSuffix("Signature=\(signature.signature)") == true)
        case .query: #expect(signature.query.last?.name == "X-Amz-Signature")
        }
    }

    /// What S3 needs beyond the suite: a digest in a key is encoded once, and the payload hash is
    /// sent and signed.
    @Test func anS3ObjectKeyIsEncodedOnceAndItsPayloadHashSigned() {
        let signer = SignatureV4(
            credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let request = SignatureV4.Request(
            method: "PUT", path: "/archway/blobs/sha256:ab cd/../x", headers: [("Host", "127.0.0.1:7480")])
        let signature = signer.sign(request, payloadHash: SignatureV4.unsignedPayload, date: Date(timeIntervalSince1970: 1_440_938_160))
        let lines = signature.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[1] == "/archway/blobs/sha256%3Aab%20cd/../x", "S3 keys are not normalized")
        #expect(lines.contains("x-amz-content-sha256:UNSIGNED-PAYLOAD"))
        #expect(signature.headers.map(\.name) == ["X-Amz-Date", "X-Amz-Content-SHA256", "Authorization"])
        #expect(SignatureV4.timestamp(Date(timeIntervalSince1970: 1_440_938_160)) == "20150830T123600Z")
    }
}
