import Crypto
import Foundation
import NIOHTTP2
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// The proxy mode's certificate authority: it signs, on the fly, a short-lived leaf for each
/// registry name a client CONNECTs to, and keeps one TLS context per name.
///
/// The CA `archway ca init` writes carries a critical X.509 Name Constraints extension that
/// permits only the configured upstream names (and their subdomains) and no IP address, so its
/// key cannot mint a certificate that a client trusts for any other site.
public final class InterceptionAuthority: Sendable {
    /// The CA cannot be used: unreadable, not PEM, a key others can read, or not the
    /// certificate's key.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// How long a leaf is valid, and when it is replaced (half way).
    static let leafLifetime: TimeInterval = 24 * 3600

    public let certificate: Certificate
    private let key: Certificate.PrivateKey
    private let authorityCertificate: NIOSSLCertificate
    /// One key for every leaf of this process; it never leaves memory.
    private let leafKey: P256.Signing.PrivateKey
    private let leafKeyForTLS: NIOSSLPrivateKey
    private let contexts = Mutex<[String: (context: NIOSSLContext, renewAt: Date)]>([:])

    /// Loads the CA. The key file must be readable by its owner alone.
    public init(certificatePath: String, keyPath: String) throws(Failure) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: keyPath),
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else { throw Failure("proxy.ca.key \(keyPath) cannot be read") }
        guard mode & 0o077 == 0 else {
            throw Failure(
                "proxy.ca.key \(keyPath) can be read by others (mode \(String(mode & 0o777, radix: 8))): "
                    + "it signs certificates clients trust; chmod 600 it")
        }
        let certificateText: String
        let keyText: String
        do {
            certificateText = try String(contentsOfFile: certificatePath, encoding: .utf8)
            keyText = try String(contentsOfFile: keyPath, encoding: .utf8)
        } catch {
            throw Failure("proxy.ca: cannot read \(certificatePath) or \(keyPath): \(error.localizedDescription)")
        }
        do {
            self.certificate = try Certificate(pemEncoded: certificateText)
        } catch {
            throw Failure("proxy.ca.certificate \(certificatePath) is not a PEM certificate: \(error)")
        }
        do {
            self.key = try Certificate.PrivateKey(pemEncoded: keyText)
        } catch {
            throw Failure("proxy.ca.key \(keyPath) is not a PEM private key (P-256, P-384 or RSA): \(error)")
        }
        guard key.publicKey == certificate.publicKey else {
            throw Failure("proxy.ca.key \(keyPath) is not the key of proxy.ca.certificate \(certificatePath)")
        }
        guard case .isCertificateAuthority? = try? certificate.extensions.basicConstraints else {
            throw Failure("proxy.ca.certificate \(certificatePath) is not a CA certificate (basicConstraints CA:TRUE)")
        }
        do {
            self.authorityCertificate = try NIOSSLCertificate(bytes: try Self.der(certificate), format: .der)
            self.leafKey = P256.Signing.PrivateKey()
            self.leafKeyForTLS = try NIOSSLPrivateKey(bytes: Array(leafKey.derRepresentation), format: .der)
        } catch {
            throw Failure("proxy.ca: cannot prepare the TLS keys: \(error)")
        }
    }

    /// The DNS names the CA may sign for (each with its subdomains); nil when it has no name
    /// constraints, that is, when it can sign for any name at all.
    public var permittedNames: [String]? { Self.permittedNames(of: certificate) }

    /// Whether a leaf for `host` is within the CA's constraints.
    public func permits(_ host: String) -> Bool { Self.permits(certificate, host) }

    /// The certificate in a PEM file.
    public static func certificate(pemFile path: String) throws -> Certificate {
        try Certificate(pemEncoded: try String(contentsOfFile: path, encoding: .utf8))
    }

    /// `certificate`'s permitted DNS names; nil when it has no name constraints.
    public static func permittedNames(of certificate: Certificate) -> [String]? {
        guard let constraints = try? certificate.extensions.nameConstraints else { return nil }
        return Array(constraints.permittedDNSDomains)
    }

    /// Whether `certificate`'s name constraints admit a leaf for `host` (RFC 5280: a DNS
    /// constraint covers the name and every name below it).
    public static func permits(_ certificate: Certificate, _ name: String) -> Bool {
        guard let constraints = try? certificate.extensions.nameConstraints else { return true }
        let host = Self.hostName(name)
        func within(_ domain: String) -> Bool {
            let domain = domain.lowercased().trimmingPrefix(".")
            return domain.isEmpty || host == domain || host.hasSuffix("." + domain)
        }
        if constraints.excludedDNSDomains.contains(where: within) { return false }
        let dnsConstrained = constraints.permittedSubtrees.contains { if case .dnsName = $0 { true } else { false } }
        return !dnsConstrained || constraints.permittedDNSDomains.contains(where: within)
    }

    /// The TLS context that presents `host`'s leaf (HTTP/2 and HTTP/1.1 by ALPN), made on first
    /// use and renewed half way through the leaf's life. Only configured names ever get here, so
    /// the contexts are as many as those names.
    public func context(for host: String, now: Date = Date()) throws -> NIOSSLContext {
        let host = host.lowercased()
        if let cached = contexts.withLock({ $0[host] }), cached.renewAt > now { return cached.context }
        let leaf = try issueLeaf(for: host, now: now)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [
                .certificate(try NIOSSLCertificate(bytes: try Self.der(leaf), format: .der)), .certificate(authorityCertificate),
            ],
            privateKey: .privateKey(leafKeyForTLS)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = NIOHTTP2SupportedALPNProtocols
        let context = try NIOSSLContext(configuration: configuration)
        contexts.withLock { $0[host] = (context, now.addingTimeInterval(Self.leafLifetime / 2)) }
        return context
    }

    /// A leaf for `host`: a server certificate valid from an hour ago for a day (never beyond
    /// the CA's own validity), with `host` as its only name.
    public func issueLeaf(for host: String, now: Date = Date()) throws -> Certificate {
        let notAfter = min(now.addingTimeInterval(Self.leafLifetime), certificate.notValidAfter)
        let publicKey = Certificate.PublicKey(leafKey.publicKey)
        var authorityKey = AuthorityKeyIdentifier()
        authorityKey.keyIdentifier = (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(host) },
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.dnsName(host)])
                authorityKey
            },
            issuerPrivateKey: key
        )
    }

    /// A new CA for `names`: a P-256 key, and a certificate valid for `days` whose critical Name
    /// Constraints permit those DNS names (and their subdomains) and exclude every IP address.
    public static func create(names: [String], commonName: String, days: Int, now: Date = Date()) throws -> (
        certificatePEM: String, keyPEM: String
    ) {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let subject = try DistinguishedName {
            OrganizationName("Archway")
            CommonName(commonName)
        }
        let constraints = NameConstraints(
            permittedDNSDomains: Self.minimal(names),
            excludedIPRanges: [
                ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0]), ASN1OctetString(contentBytes: ArraySlice(repeating: 0, count: 32)),
            ]
        )
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(TimeInterval(days) * 86400),
            issuer: subject,
            subject: subject,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                Critical(constraints)
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key
        )
        return (try certificate.serializeAsPEM().pemString, try key.serializeAsPEM().pemString)
    }

    /// The names without those another name already covers (`docker.io` covers
    /// `registry-1.docker.io`), lowercased, in order.
    static func minimal(_ names: [String]) -> [String] {
        let names = names.map(Self.hostName)
        var seen = Set<String>()
        return names.filter { name in
            !names.contains { $0 != name && name.hasSuffix("." + $0) } && seen.insert(name).inserted
        }
    }

    /// The DNS name of an upstream name: lowercased, without a `:port` or a trailing dot.
    static func hostName(_ name: String) -> String {
        var host = Substring(name.lowercased())
        if let colon = host.lastIndex(of: ":"), !host[host.index(after: colon)...].isEmpty,
            host[host.index(after: colon)...].allSatisfy(\.isNumber)
        {
            host = host[..<colon]
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        return String(host)
    }

    private static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }
}
