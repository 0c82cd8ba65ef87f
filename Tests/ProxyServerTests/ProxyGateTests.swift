import Foundation
import InterceptionCA
import ProxyServer
import Testing
import X509

@Suite struct ProxyRequestHeadTests {
    static func parse(_ text: String) throws -> ProxyRequestHead? {
        try ProxyRequestHead.parse(Array(text.utf8))?.head
    }

    @Test func aConnectHeadGivesItsHostPortAndFields() throws {
        let text = "CONNECT GHCR.io.:443 HTTP/1.1\r\nHost: ghcr.io:443\r\nProxy-Authorization: Basic eDp5\r\n\r\nearly bytes"
        let (head, length) = try #require(try ProxyRequestHead.parse(Array(text.utf8)))
        #expect(head.method == "CONNECT" && head.host == "ghcr.io" && head.port == 443 && !head.isAddress && head.path == nil)
        #expect(head.fields["proxy-authorization"] == "Basic eDp5")
        #expect(length == text.utf8.count - "early bytes".utf8.count, "what follows the head is the client's, not the head's")
    }

    @Test func anIncompleteHeadWaitsAndAnOverlongOneIsRefused() throws {
        #expect(try Self.parse("CONNECT ghcr.io:443 HTTP/1.1\r\nHost: x\r\n") == nil)
        let long = "CONNECT ghcr.io:443 HTTP/1.1\r\nX: " + String(repeating: "a", count: ProxyRequestHead.limit)
        let failure = #expect(throws: ProxyRequestHead.Failure.self) { try Self.parse(long) }
        #expect(failure?.status == 431)
    }

    @Test func absoluteFormNamesItsHostAndPath() throws {
        let head = try #require(
            try Self.parse("GET http://registry.lan:5000/v2/x/manifests/1?ns=a HTTP/1.1\r\nHost: registry.lan:5000\r\n\r\n"))
        #expect(head.host == "registry.lan" && head.port == 5000 && head.path == "/v2/x/manifests/1?ns=a")
        let bare = try #require(try Self.parse("HEAD http://registry.lan HTTP/1.1\r\n\r\n"))
        #expect(bare.port == 80 && bare.path == "/")
    }

    @Test(arguments: ["127.0.0.1:443", "[::1]:443", "2130706433:443", "0x7f.1:443", "10.0.0.1:443", "[fe80::1]:22"])
    func addressesAreToldFromNames(target: String) throws {
        #expect(try Self.parse("CONNECT \(target) HTTP/1.1\r\n\r\n")?.isAddress == true)
    }

    @Test(arguments: [
        "CONNECT ghcr.io:443 HTTP/2\r\n\r\n",
        "CONNECT ghcr.io:443\r\n\r\n",
        "CONNECT  ghcr.io:443 HTTP/1.1\r\n\r\n",
        "connect ghcr.io:443 HTTP/1.1\r\n\r\n",
        "CONNECT ghcr.io:0 HTTP/1.1\r\n\r\n",
        "CONNECT ghcr.io:65536 HTTP/1.1\r\n\r\n",
        "CONNECT ghcr.io:+443 HTTP/1.1\r\n\r\n",
        "CONNECT ghcr.io:٤٤٣ HTTP/1.1\r\n\r\n",
        "CONNECT ghcr.io: HTTP/1.1\r\n\r\n",
        "CONNECT ghcr.io HTTP/1.1\r\n\r\n",
        "CONNECT :443 HTTP/1.1\r\n\r\n",
        "CONNECT gh_cr.io:443 HTTP/1.1\r\n\r\n",
        "CONNECT ghcr..io:443 HTTP/1.1\r\n\r\n",
        "CONNECT -ghcr.io:443 HTTP/1.1\r\n\r\n",
        "CONNECT gh\u{7f}cr.io:443 HTTP/1.1\r\n\r\n",
        "CONNECT ghcr.io:443 HTTP/1.1\r\nHost ghcr.io\r\n\r\n",
        "CONNECT ghcr.io:443 HTTP/1.1\r\n folded: x\r\n\r\n",
        "CONNECT ghcr.io:443 HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        "CONNECT ghcr.io:443 HTTP/1.1\r\nProxy-Authorization: a\r\nProxy-Authorization: b\r\n\r\n",
        "CONNECT [zz::1]:443 HTTP/1.1\r\n\r\n",
        "GET /v2/ HTTP/1.1\r\n\r\n",
        "GET https://ghcr.io/v2/ HTTP/1.1\r\n\r\n",
        "CONNECT \(String(repeating: "a", count: 64)).io:443 HTTP/1.1\r\n\r\n",
    ])
    func malformedHeadsAreRefused(text: String) {
        #expect(throws: ProxyRequestHead.Failure.self, "\(text.debugDescription)") { try Self.parse(text) }
    }
}

@Suite struct ProxyGateTests {
    static let gate = ProxyGate(
        upstreams: [
            .init(hosts: ["docker.io", "registry-1.docker.io"], url: "https://registry-1.docker.io"),
            .init(hosts: ["ghcr.io"], url: "https://ghcr.io"),
            .init(hosts: ["registry.corp"], url: "https://registry.corp:8443"),
            .init(hosts: ["registry.lan"], url: "http://registry.lan:5000"),
            .init(hosts: ["registry.internal:5000"], url: "https://10.0.0.5:5000"),
        ],
        tunnels: [ProxyGate.TunnelEntry("*.githubusercontent.com")!, ProxyGate.TunnelEntry("auth.corp:8443")!]
    )

    static func decide(_ text: String) throws -> ProxyGate.Decision {
        gate.decide(try #require(try ProxyRequestHead.parse(Array(text.utf8))?.head))
    }

    @Test func configuredNamesAreInterceptedOnTheirPorts() throws {
        #expect(
            try Self.decide("CONNECT registry-1.docker.io:443 HTTP/1.1\r\n\r\n")
                == .intercept(host: "registry-1.docker.io", upstream: "registry-1.docker.io"))
        #expect(try Self.decide("CONNECT GHCR.IO:443 HTTP/1.1\r\n\r\n") == .intercept(host: "ghcr.io", upstream: "ghcr.io"))
        #expect(
            try Self.decide("CONNECT registry.corp:8443 HTTP/1.1\r\n\r\n") == .intercept(host: "registry.corp", upstream: "registry.corp"))
        #expect(
            try Self.decide("CONNECT registry.internal:5000 HTTP/1.1\r\n\r\n")
                == .intercept(host: "registry.internal", upstream: "registry.internal:5000"))
        guard case .refuse(403, _) = try Self.decide("CONNECT registry.internal:443 HTTP/1.1\r\n\r\n") else {
            Issue.record("a name with a port is that port only")
            return
        }
        guard case .refuse(403, _) = try Self.decide("CONNECT ghcr.io:22 HTTP/1.1\r\n\r\n") else {
            Issue.record("another port of an upstream's host is not the upstream")
            return
        }
    }

    @Test func listedHostsAreTunnelledAndNothingElse() throws {
        #expect(
            try Self.decide("CONNECT objects.githubusercontent.com:443 HTTP/1.1\r\n\r\n")
                == .tunnel(host: "objects.githubusercontent.com", port: 443, exact: false))
        #expect(try Self.decide("CONNECT auth.corp:8443 HTTP/1.1\r\n\r\n") == .tunnel(host: "auth.corp", port: 8443, exact: true))
        for refused in [
            "CONNECT githubusercontent.com:443 HTTP/1.1\r\n\r\n",  // the wildcard needs a label
            "CONNECT evilgithubusercontent.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT objects.githubusercontent.com:8443 HTTP/1.1\r\n\r\n",
            "CONNECT auth.corp:443 HTTP/1.1\r\n\r\n",
            "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT 140.82.112.3:443 HTTP/1.1\r\n\r\n",
        ] {
            guard case .refuse(403, _) = try Self.decide(refused) else {
                Issue.record("not refused: \(refused.debugDescription)")
                continue
            }
        }
    }

    @Test func plainHTTPIsForwardedOnlyToPlainUpstreamsAndOnlyForReads() throws {
        #expect(
            try Self.decide("GET http://registry.lan:5000/v2/ HTTP/1.1\r\n\r\n") == .forward(host: "registry.lan", upstream: "registry.lan")
        )
        guard case .refuse(403, _) = try Self.decide("GET http://ghcr.io/v2/ HTTP/1.1\r\n\r\n"),
            case .refuse(405, _) = try Self.decide("PUT http://registry.lan:5000/v2/x/manifests/1 HTTP/1.1\r\n\r\n"),
            case .refuse(403, _) = try Self.decide("GET http://registry.lan:6000/v2/ HTTP/1.1\r\n\r\n")
        else {
            Issue.record("plain HTTP reached what it must not")
            return
        }
    }

    @Test(arguments: ["*", "*.", "*.com", "a.*.b", "**.example", "*example.com", "10.0.0.1", "[::1]:443", "host:0", "host:x", ""])
    func tunnelEntriesThatWouldOpenTooMuchAreRefused(text: String) {
        #expect(ProxyGate.TunnelEntry(text) == nil, "\(text)")
    }
}

@Suite struct InterceptionAuthorityTests {
    static func authority(names: [String]) throws -> InterceptionAuthority {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archway-ca-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (certificate, key) = try InterceptionAuthority.create(names: names, commonName: "test", days: 30)
        let certificatePath = directory.appendingPathComponent("ca.crt").path
        let keyPath = directory.appendingPathComponent("ca.key").path
        try certificate.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try key.write(toFile: keyPath, atomically: true, encoding: .utf8)
        #expect(throws: InterceptionAuthority.Failure.self, "a key others can read is refused") {
            try InterceptionAuthority(certificatePath: certificatePath, keyPath: keyPath)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPath)
        return try InterceptionAuthority(certificatePath: certificatePath, keyPath: keyPath)
    }

    @Test func theConstraintsPermitTheUpstreamsAndTheirSubdomainsOnly() throws {
        let authority = try Self.authority(names: ["docker.io", "registry-1.docker.io", "GHCR.io", "registry.internal:5000"])
        #expect(authority.permittedNames == ["docker.io", "ghcr.io", "registry.internal"], "a name another covers is left out; no port")
        #expect(authority.permits("registry.internal:5000"))
        for host in ["docker.io", "registry-1.docker.io", "ghcr.io", "pkg.ghcr.io"] { #expect(authority.permits(host), "\(host)") }
        for host in ["evildocker.io", "docker.io.evil.com", "quay.io", "io"] { #expect(!authority.permits(host), "\(host)") }
    }

    @Test func leavesAreShortLivedServerCertificatesForOneNameAndContextsAreReused() throws {
        let authority = try Self.authority(names: ["ghcr.io"])
        let now = Date()
        let leaf = try authority.issueLeaf(for: "ghcr.io", now: now)
        #expect(leaf.issuer == authority.certificate.subject)
        #expect(leaf.notValidAfter.timeIntervalSince(now) <= 24 * 3600 + 1)
        #expect(try leaf.extensions.subjectAlternativeNames.map(Array.init) == [.dnsName("ghcr.io")])
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(authority.certificate.publicKey.isValidSignature(leaf.signature, for: leaf))
        let first = try authority.context(for: "ghcr.io", now: now)
        #expect(try authority.context(for: "GHCR.io", now: now.addingTimeInterval(3600)) === first, "one context per name")
        #expect(try authority.context(for: "ghcr.io", now: now.addingTimeInterval(13 * 3600)) !== first, "renewed half way")
    }
}
