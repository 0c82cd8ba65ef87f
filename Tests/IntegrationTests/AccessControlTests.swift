import ArchwayTesting
import Foundation
import HummingbirdBcrypt
import Testing

/// Allow lists and private upstreams with htpasswd users, against the real binary.
@Suite(.serialized) struct AccessControlTests {
    @Test func allowListsPrivateUpstreamsAndBasicAuthentication() async throws {
        try await withUpstreamRegistry { upstream in
            let images = try await StandardImages.seed(upstream)
            try await withTemporaryDirectory { directory in
                let configuration = try Robots.configuration(public: upstream.url, private: upstream.url, in: directory)
                try await withArchwayProcess(configuration: configuration) { archway in
                    let accept = ["Accept": "application/vnd.oci.image.index.v1+json"]
                    let open = try await httpRequest("GET", "\(archway.url)/v2/public.test/test/multi/manifests/1.0", headers: accept)
                    #expect(open.status == 200)

                    let mark = upstream.accessLogMark()
                    let outside = try await httpRequest("GET", "\(archway.url)/v2/public.test/library/busybox/manifests/1", headers: accept)
                    #expect(outside.status == 403)
                    #expect(outside.bodyText.contains("DENIED"))
                    #expect(upstream.accessLog(since: mark).isEmpty, "a refused repository is never asked upstream")

                    // curl, not URLSession: FoundationNetworking waits forever for a credential on a 401.
                    let privateURL = "\(archway.url)/v2/private.test/library/busybox/manifests/1"
                    let acceptHeader = ["-H", "Accept: application/vnd.oci.image.index.v1+json"]
                    let anonymous = try await HTTPSurfaceTests.curl(acceptHeader + [privateURL])
                    #expect(anonymous.status == 401)
                    #expect(anonymous.headers["www-authenticate"] == #"Basic realm="archway""#)
                    let wrong = try await HTTPSurfaceTests.curl(acceptHeader + ["-u", "robot:nope", privateURL])
                    #expect(wrong.status == 401)
                    let admitted = try await HTTPSurfaceTests.curl(acceptHeader + ["-u", "robot:s3cret", privateURL])
                    #expect(admitted.status == 200)
                    #expect(admitted.headers["docker-content-digest"] == images.busybox.digest)

                    // A real client with credentials.
                    let inspect = try await Skopeo.inspectRaw(
                        "docker://\(archway.host)/private.test/library/busybox:1",
                        arguments: ["--tls-verify=false", "--creds", "robot:s3cret"]
                    )
                    #expect(inspect.succeeded, "\(inspect)")
                    let refused = try await Skopeo.inspectRaw(
                        "docker://\(archway.host)/private.test/library/busybox:1", arguments: ["--tls-verify=false"])
                    #expect(!refused.succeeded)
                    // Anonymous clients still pull public content after the ping's challenge.
                    let anonymousPull = try await Skopeo.inspectRaw(
                        "docker://\(archway.host)/public.test/test/multi:1.0", arguments: ["--tls-verify=false"])
                    #expect(anonymousPull.succeeded, "\(anonymousPull)")
                }
            }
        }
    }
}

/// The access-control fixture: an htpasswd file with `robot:s3cret`, a public upstream that allows
/// `test/**` (the default) and a private one.
enum Robots {
    /// An htpasswd file in `directory` with `robot:s3cret`.
    static func htpasswd(in directory: URL, cost: UInt8 = 4) throws -> URL {
        let htpasswd = directory.appendingPathComponent("htpasswd")
        try "# pull robots\nrobot:$2y$\(Bcrypt.hash("s3cret", cost: cost).dropFirst(4))\n".write(
            to: htpasswd, atomically: true, encoding: .utf8)
        return htpasswd
    }

    static func configuration(public publicURL: String, private privateURL: String, in directory: URL, cost: UInt8 = 4) throws -> String {
        let htpasswd = try htpasswd(in: directory, cost: cost)
        return """
            upstreams:
              - name: public.test
                url: \(publicURL)
                allow: ["test/**"]
              - name: private.test
                url: \(privateURL)
                private: true
            default-upstream: public.test
            auth:
              htpasswd: \(htpasswd.path)
              required: false

            """
    }
}
