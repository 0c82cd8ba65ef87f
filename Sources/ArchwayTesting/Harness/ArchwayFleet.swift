import Foundation
import ObjectStorage

extension RadosGateway {
    /// A client of `bucket` on this gateway, with its keys.
    public func client(bucket: String = "archway") -> S3Client {
        S3Client(
            location: S3Location(endpoint: url, region: "us-east-1", bucket: bucket, pathStyle: true)!,
            credentials: AWSCredentials(accessKeyID: accessKey, secretAccessKey: secretKey))
    }

    /// The `s3:` block of an Archway configuration for `bucket`, its key files written beside the
    /// gateway (the secret's readable by its owner alone).
    public func storageKeys(bucket: String = "archway", redirect: Bool = false) throws -> String {
        let access = directory.appendingPathComponent("access-key")
        let secret = directory.appendingPathComponent("secret-key")
        try accessKey.write(to: access, atomically: true, encoding: .utf8)
        try secretKey.write(to: secret, atomically: true, encoding: .utf8)
        chmod(secret.path, 0o600)
        return """
            s3:
              endpoint: \(url)
              bucket: \(bucket)
              access-key-file: \(access.path)
              secret-key-file: \(secret.path)
              redirect: \(redirect)
            """
    }
}

/// Archway replicas as a fleet: one radosgw bucket, one PostgreSQL catalog, a shared secret, and
/// nginx in front of them, round robin. Everything real, on loopback, started and stopped here.
public struct ArchwayFleet: Sendable {
    public let replicas: [ArchwayProcess]
    public let front: NginxFront
    public let gateway: RadosGateway
    public let database: PostgresServer
}

/// Runs `body` with a fleet of `count` replicas (`r0`, `r1`, ...) whose configuration is
/// `configuration` (upstreams, policies, ...) plus the shared storage, catalog and replica keys.
public func withArchwayFleet<T>(
    configuration: String, count: Int = 3, isolation: isolated (any Actor)? = #isolation, _ body: (ArchwayFleet) async throws -> T
) async throws -> T {
    try await withRadosGateway { gateway in
        try await withPostgres { database in
            try await gateway.client().createBucket()
            let storage = try gateway.storageKeys()
            let secret = gateway.directory.appendingPathComponent("fleet-secret")
            try String(repeating: "fleet-secret-", count: 4).write(to: secret, atomically: true, encoding: .utf8)
            chmod(secret.path, 0o600)
            func replicaConfiguration(_ name: String) -> String {
                configuration + """

                    catalog:
                      postgres:
                        url: \(database.url)?sslmode=disable
                    replica:
                      name: \(name)
                      advertise-url: $ARCHWAY_URL
                      secret-file: \(secret.path)

                    """
            }
            var replicas: [ArchwayProcess] = []
            do {
                for index in 0..<count {
                    replicas.append(try await ArchwayProcess.start(configuration: replicaConfiguration("r\(index)"), storageKeys: storage))
                }
                let result = try await withNginxFront(backends: replicas.map(\.host)) { front in
                    try await body(ArchwayFleet(replicas: replicas, front: front, gateway: gateway, database: database))
                }
                for replica in replicas { await replica.close() }
                return result
            } catch {
                for replica in replicas { await replica.close() }
                throw error
            }
        }
    }
}
