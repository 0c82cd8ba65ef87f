import Foundation
import HummingbirdTLS
import NIOSSL

/// The certificate or key cannot serve: unreadable, not PEM, or not a pair.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
}

extension Configuration.TLS {
    /// The server's TLS configuration, checked now: a certificate that cannot be read, a key
    /// that is not the certificate's, or a bad client CA stops start-up with a clear message.
    func serverConfiguration() throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw TLSSetupError(description: "tls.certificate \(certificate) is not a PEM certificate: \(error)")
        }
        guard !chain.isEmpty else { throw TLSSetupError(description: "tls.certificate \(certificate) holds no certificate") }
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw TLSSetupError(description: "tls.key \(key) is not a PEM private key: \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(privateKey)
        )
        if let clientCA {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
            } catch {
                throw TLSSetupError(description: "tls.client-ca \(clientCA) is not a PEM certificate: \(error)")
            }
            configuration.certificateVerification = .noHostnameVerification
        }
        do {
            // BoringSSL checks here that the key belongs to the certificate.
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError(description: "tls.key \(key) and tls.certificate \(certificate) cannot serve together: \(error)")
        }
        return configuration
    }
}
