import ArchwayApp
import ArgumentParser
import Foundation
import InterceptionCA
import ProxyServer
import X509

struct CertificateAuthorityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "The proxy mode's CA: write one limited to the configured registries, or check one.",
        subcommands: [Initialize.self, Check.self]
    )

    struct Initialize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Write proxy.ca's certificate and key: a CA whose name constraints permit only the upstreams' names.",
            discussion: """
                The certificate carries a critical X.509 Name Constraints extension that permits the configured
                upstream names and aliases (each with its subdomains) and no IP address, so the key cannot
                mint a certificate a client trusts for any other site. The key is written readable by its
                owner alone. Give clients the certificate; keep the key where only Archway reads it.
                """
        )

        @Option(help: "The configuration file: its upstreams are the names the CA permits; proxy.ca says where to write.")
        var config: String

        @Option(help: "How long the CA is valid, in days.")
        var days = 1825

        @Flag(help: "Replace an existing certificate and key.")
        var force = false

        func run() async throws {
            let configuration = try loadConfiguration(config)
            guard let proxy = configuration.proxy else {
                throw ValidationError("\(config) has no proxy: section (proxy.ca says where the CA goes)")
            }
            guard (1...3650).contains(days) else { throw ValidationError("--days must be 1-3650") }
            for path in [proxy.certificate, proxy.key] where FileManager.default.fileExists(atPath: path) && !force {
                throw ValidationError("\(path) exists: pass --force to replace it (every client must then trust the new certificate)")
            }
            let names = configuration.upstreamHosts.sorted()
            let host = ProcessInfo.processInfo.hostName
            let (certificate, key) = try InterceptionAuthority.create(names: names, commonName: "Archway proxy CA (\(host))", days: days)
            // The key is created readable by its owner alone, before a byte is in it.
            _ = FileManager.default.createFile(atPath: proxy.key, contents: nil, attributes: [.posixPermissions: 0o600])
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: proxy.key)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: proxy.key))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(key.utf8))
            try handle.close()
            try certificate.write(toFile: proxy.certificate, atomically: true, encoding: .utf8)
            print("wrote \(proxy.certificate) (give it to clients) and \(proxy.key) (mode 600; Archway alone reads it)")
            let permitted =
                InterceptionAuthority.permittedNames(of: try InterceptionAuthority.certificate(pemFile: proxy.certificate)) ?? []
            print("it permits: \(permitted.joined(separator: ", ")) and their subdomains; no IP address; valid \(days) days")
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say which names a CA may sign for; warn when it is unconstrained or misses a configured name.",
            discussion: "Exits 1 when there is a warning."
        )

        @Option(help: "The configuration file (its upstreams, and proxy.ca.certificate unless --certificate is given).")
        var config: String

        @Option(help: "The CA certificate to check instead of proxy.ca.certificate.")
        var certificate: String?

        func run() async throws {
            let configuration = try loadConfiguration(config)
            guard let path = certificate ?? configuration.proxy?.certificate else {
                throw ValidationError("\(config) has no proxy: section; pass --certificate")
            }
            let authority: Certificate
            do {
                authority = try InterceptionAuthority.certificate(pemFile: path)
            } catch {
                throw ValidationError("\(path) is not a PEM certificate: \(error)")
            }
            print("certificate: \(path)")
            print("subject: \(authority.subject)")
            print("valid until: \(authority.notValidAfter)")
            var warnings: [String] = []
            if case .isCertificateAuthority? = try? authority.extensions.basicConstraints {
            } else {
                warnings.append("\(path) is not a CA certificate (no basicConstraints CA:TRUE)")
            }
            if let names = InterceptionAuthority.permittedNames(of: authority) {
                let addresses = (try? authority.extensions.nameConstraints)?.excludedIPRanges.isEmpty == false
                print("permits: \(names.joined(separator: ", ")) and their subdomains\(addresses ? "; no IP address" : "")")
                if !addresses {
                    warnings.append("the CA's constraints do not exclude IP addresses: its key can sign for any address")
                }
            } else {
                print("permits: every name (no name constraints)")
                warnings.append(
                    "the CA has no name constraints: its key can sign a certificate for any site, and every node that trusts "
                        + "the CA trusts that certificate; `archway ca init` writes one limited to the upstreams")
            }
            if authority.notValidAfter < Date() { warnings.append("the CA expired on \(authority.notValidAfter)") }
            for host in configuration.upstreamHosts.sorted() {
                let permitted = InterceptionAuthority.permits(authority, host)
                print("  \(host): \(permitted ? "permitted" : "NOT permitted")")
                if !permitted {
                    warnings.append("\(host) is an upstream but the CA does not permit it: clients will refuse the proxy's certificate")
                }
            }
            for warning in warnings { print("warning: \(warning)") }
            if !warnings.isEmpty { throw ExitCode(1) }
        }
    }
}
