import ArchwayTesting
import Foundation
import OCI
import ObjectStorage
import Testing

/// Our signatures against a strict S3: Ceph's radosgw, started by the harness on loopback, checks
/// them as AWS does.
@Suite(.serialized) struct RadosGatewaySigningTests {
    static let date = Date()

    func signer(_ gateway: RadosGateway, secret: String? = nil) -> SignatureV4 {
        SignatureV4(
            credentials: AWSCredentials(accessKeyID: gateway.accessKey, secretAccessKey: secret ?? gateway.secretKey), region: "us-east-1")
    }

    /// Sends `method path` signed by header, with `body`.
    func send(_ gateway: RadosGateway, _ method: String, _ path: String, body: Data? = nil, secret: String? = nil) async throws
        -> HTTPResult
    {
        let request = SignatureV4.Request(method: method, path: path, headers: [("Host", gateway.host)])
        let signature = signer(gateway, secret: secret).sign(
            request, payloadHash: Digest.sha256(body ?? Data()).encoded, date: Date())
        var headers: [String: String] = [:]
        for (name, value) in signature.headers { headers[name] = value }
        return try await httpRequest(method, gateway.url + Self.encodedPath(path), headers: headers, body: body)
    }

    /// The path as sent on the wire: encoded as the signer encodes it.
    static func encodedPath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { SignatureV4.encode(String($0)) }.joined(separator: "/")
    }

    @Test func radosgwAcceptsOurSignaturesAndRefusesWrongOnes() async throws {
        try await withRadosGateway { gateway in
            let content = Data("a layer's bytes".utf8)
            let key = "/archway/blobs/sha256:\(Digest.sha256(content).encoded)"
            #expect(try await send(gateway, "PUT", "/archway").status == 200, "bucket created")
            #expect(try await send(gateway, "PUT", key, body: content).status == 200, "object stored")
            let fetched = try await send(gateway, "GET", key)
            #expect(fetched.status == 200)
            #expect(fetched.body == content)
            // A wrong secret, and a body that is not the one signed, are refused.
            #expect(try await send(gateway, "GET", key, secret: "not the secret").status == 403)
            let request = SignatureV4.Request(method: "PUT", path: key + ".tampered", headers: [("Host", gateway.host)])
            var headers: [String: String] = [:]
            for (name, value) in signer(gateway).sign(request, payloadHash: Digest.sha256(content).encoded, date: Date()).headers {
                headers[name] = value
            }
            let tampered = try await httpRequest(
                "PUT", gateway.url + Self.encodedPath(key + ".tampered"), headers: headers, body: Data("other bytes".utf8))
            #expect(tampered.status == 400 || tampered.status == 403, "\(tampered.status) \(tampered.bodyText)")
            // A presigned URL fetches without credentials; changed, it is refused.
            let presigned = signer(gateway).presign(
                SignatureV4.Request(method: "GET", path: key, headers: [("Host", gateway.host)]), payloadHash: SignatureV4.unsignedPayload,
                date: Date(), expires: 300)
            let query = presigned.query.map { "\(SignatureV4.encode($0.name))=\(SignatureV4.encode($0.value))" }.joined(separator: "&")
            let url = gateway.url + Self.encodedPath(key) + "?" + query
            let viaURL = try await httpRequest("GET", url)
            #expect(viaURL.status == 200 && viaURL.body == content, "\(viaURL.status) \(viaURL.bodyText)")
            #expect(
                try await httpRequest("GET", url.replacingOccurrences(of: "X-Amz-Expires=300", with: "X-Amz-Expires=3000")).status == 403)
        }
    }
}
