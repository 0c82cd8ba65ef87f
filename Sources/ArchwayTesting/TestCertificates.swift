import Foundation

/// A throwaway PKI made with the `openssl` command: a CA, a server certificate for 127.0.0.1 and
/// localhost, a client certificate, and a key that belongs to neither.
public struct TestCertificates: Sendable {
    public let directory: URL
    public var caCertificate: URL { directory.appendingPathComponent("ca.crt") }
    public var serverCertificate: URL { directory.appendingPathComponent("server.crt") }
    public var serverKey: URL { directory.appendingPathComponent("server.key") }
    public var clientCertificate: URL { directory.appendingPathComponent("client.cert") }
    public var clientKey: URL { directory.appendingPathComponent("client.key") }
    public var strayKey: URL { directory.appendingPathComponent("stray.key") }

    public static func make(in directory: URL) async throws -> TestCertificates {
        let openssl = try requireProgram("openssl")
        let certificates = TestCertificates(directory: directory)
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: path("san.ext"), atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("ca.key"), "-out", path("ca.crt"), "-days", "2", "-subj",
                "/CN=Archway Test CA",
            ],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=127.0.0.1"],
            [
                "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"), "-CAcreateserial",
                "-out", path("server.crt"), "-days", "2", "-extfile", path("san.ext"),
            ],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", path("client.key"), "-out", path("client.csr"), "-subj", "/CN=node-1"],
            [
                "x509", "-req", "-in", path("client.csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"), "-CAcreateserial", "-out",
                path("client.cert"), "-days", "2",
            ],
            ["genrsa", "-out", path("stray.key"), "2048"],
        ]
        for step in steps {
            try await run(openssl, step).requireSuccess()
        }
        return certificates
    }
}
