import Foundation
import Logging
import NIOCore
import Policies
import ProxyServer
import SharedState
import Testing

@testable import ArchwayApp

@Suite struct ConfigurationTests {
    @Test func theDesignExampleParses() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archway-config-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "hunter2\n".write(to: directory.appendingPathComponent("internal.pass"), atomically: true, encoding: .utf8)
        let yaml = """
            listen: 0.0.0.0:5000
            storage:
              path: /var/cache/archway
              max-size: 200GiB
            upstreams:
              - name: docker.io
                url: https://registry-1.docker.io
                aliases: [index.docker.io, registry-1.docker.io]
              - name: ghcr.io
                url: https://ghcr.io
              - name: registry.internal:5000
                url: http://10.0.0.5:5000
                credentials: { username: robot, password-file: internal.pass }
            default-upstream: docker.io
            tag-ttl: 5m
            offline: false
            policies: policies
            """
        let configuration = try Configuration.parse(yaml, file: "archway.yaml", relativeTo: directory.path)
        #expect(configuration.listen == .init(host: "0.0.0.0", port: 5000))
        #expect(configuration.storagePath == "/var/cache/archway")
        #expect(configuration.storageMaxSize == 200 << 30)
        #expect(configuration.upstreams.map(\.name) == ["docker.io", "ghcr.io", "registry.internal:5000"])
        #expect(configuration.upstreams[0].aliases == ["index.docker.io", "registry-1.docker.io"])
        #expect(configuration.upstreams[2].username == "robot")
        #expect(configuration.upstreams[2].password == "hunter2")
        #expect(configuration.defaultUpstream == "docker.io")
        #expect(configuration.tagTTL == .seconds(300))
        #expect(configuration.policiesPath == directory.path + "/policies")
    }

    @Test func limitsAndHostListsParse() throws {
        let yaml = """
            upstreams:
              - name: registry.example.com
                url: https://registry.example.com
                token-hosts: [Auth.Example.org]
                redirect-hosts: ["127.0.0.1:9000"]
            default-upstream: registry.example.com
            limits:
              connections: 2000
              request-timeout: 15s
              handshake-timeout: 5s
              write-timeout: 2m
              http2-streams: 32
              streamed-responses: 100
            """
        let configuration = try Configuration.parse(yaml, file: "archway.yaml")
        #expect(configuration.upstreams[0].tokenHosts == ["auth.example.org"])
        #expect(configuration.upstreams[0].redirectHosts == ["127.0.0.1:9000"])
        #expect(configuration.connectionLimits.maxConnections == 2000)
        #expect(configuration.connectionLimits.requestTimeout == .seconds(15))
        #expect(configuration.connectionLimits.handshakeTimeout == .seconds(5))
        #expect(configuration.connectionLimits.writeTimeout == .seconds(120))
        #expect(configuration.connectionLimits.maxConcurrentStreams == 32)
        #expect(configuration.streamedResponses == 100)
        #expect(Configuration.embeddedDefault().connectionLimits.maxConnections == 4096)
    }

    @Test func eventLoopsAreOnePerCoreUnlessSaid() throws {
        #expect(Configuration.embeddedDefault().eventLoops == nil)
        #expect(try Configuration.parse("event-loops: auto\n", file: "archway.yaml").eventLoops == nil)
        #expect(try Configuration.parse("event-loops: 1\n", file: "archway.yaml").eventLoops == 1)
        #expect(try Configuration.parse("event-loops: 256\n", file: "archway.yaml").eventLoops == 256)
    }

    @Test(arguments: [
        ("listen: 127.0.0.1:5000\nlistn: x\n", 2, "unknown key 'listn'"),
        ("listen: nowhere\n", 1, "listen must be HOST:PORT"),
        ("upstreams:\n  - name: a.io\n    url: ftp://a.io\n", 3, "must start with http:// or https://"),
        ("upstreams:\n  - name: a.io\n", 2, "'url' is required"),
        ("upstreams:\n  - name: a.io\n    url: https://a.io\n  - name: a.io\n    url: https://b.io\n", 4, "configured twice"),
        ("default-upstream: nowhere.io\n", 1, "is not among the upstreams"),
        ("tag-ttl: soon\n", 1, "tag-ttl must be a duration"),
        ("storage:\n  max-size: lots\n", 2, "storage.max-size must be a size"),
        ("storage: [a]\n", 1, "storage must be a mapping"),
        ("listen: [unclosed\n", 2, "not valid YAML"),
        ("limits:\n  connections: lots\n", 2, "limits.connections must be a whole number"),
        ("listen: 127.0.0.1:5000\nevent-loops: 0\n", 2, "event-loops must be auto (one per core) or a whole number from 1 to 256, not '0'"),
        ("event-loops: all\n", 1, "event-loops must be auto"),
        ("limits:\n  request-timeout: never\n", 2, "limits.request-timeout must be a positive duration"),
        ("limits:\n  idle: 5s\n", 2, "unknown key 'idle'"),
        ("upstreams:\n  - name: a.io\n    url: https://a.io\n    token-hosts: [\"https://auth.a.io\"]\n", 4, "must be a host or host:port"),
        ("upstreams:\n  - name: a.io\n    url: https://a.io\n    redirect-hosts: [\"*.cdn\"]\n", 4, "must be a host or host:port"),
        (
            "upstreams:\n  - name: a.io\n    url: https://a.io\n    credentials: { username: u, password-file: /nonexistent/pass }\n", 4,
            "cannot be read"
        ),
        ("tls:\n  certificate: a\n", 2, "'certificate' and 'key' are both required"),
        ("tls:\n  certificate: /nonexistent.crt\n  key: /nonexistent.key\n", 2, "tls.certificate '/nonexistent.crt' cannot be read"),
        ("offline: sometimes\n", 1, "offline must be true or false"),
        ("listen: 127.0.0.1:5000\nmismatch: block\n", 2, "mismatch must be warn or refuse, not 'block'"),
        ("binaries:\n  verify: maybe\n", 2, "binaries.verify must be true or false"),
        ("admin-listen: nowhere\n", 1, "admin-listen must be HOST:PORT"),
        ("listen: 127.0.0.1:5000\nadmin-listen: 127.0.0.1:5000\n", 2, "admin-listen must be another address than listen"),
        ("binaries:\n  max-layer-size: 10KiB\n", 2, "binaries.max-layer-size must be at least 1MiB"),
        ("binaries:\n  max-layer-size: lots\n", 2, "binaries.max-layer-size"),
        ("binaries:\n  scan: true\n", 2, "scan"),
        ("storage:\n  s3:\n    endpoint: http://127.0.0.1:7480\n", 3, "storage.s3: 'bucket' is required"),
        ("storage:\n  s3:\n    bucket: cache\n", 3, "storage.s3: 'endpoint' is required"),
        ("storage:\n  s3:\n    endpoint: http://h/path\n    bucket: cache\n", 3, "storage.s3.endpoint must be http(s)://host[:port]"),
        ("storage:\n  s3:\n    endpoint: http://h\n    bucket: Bad_Bucket\n", 4, "storage.s3.bucket must be 3-63"),
        ("storage:\n  s3:\n    endpoint: http://h\n    bucket: cache\n    region: \"eu west\"\n", 5, "storage.s3.region must be"),
        ("storage:\n  s3:\n    endpoint: http://h\n    bucket: cache\n", 3, "'access-key-file' is required"),
        (
            "storage:\n  s3:\n    endpoint: http://h\n    bucket: cache\n    access-key-file: /nonexistent/key\n", 5,
            "storage.s3.access-key-file '/nonexistent/key' cannot be read"
        ),
        ("storage:\n  s3:\n    endpoint: http://h\n    bucket: cache\n    max-size: lots\n", 5, "storage.s3.max-size must be a size"),
        (
            "storage:\n  s3:\n    endpoint: http://h\n    bucket: cache\n    redirect: maybe\n", 5,
            "storage.s3.redirect must be true or false"
        ),
        ("storage:\n  s3:\n    endpoint: http://h\n    bucket: cache\n    secret: x\n", 5, "unknown key 'secret'"),
        ("catalog:\n  postgres:\n    url: mysql://u@h/d\n", 3, "catalog.postgres.url must be postgres://USER@HOST"),
        ("catalog:\n  postgres:\n    url: postgres://u:hunter2@h/d\n", 3, "with the password in password-file"),
        ("catalog:\n  postgres:\n    host: h\n", 3, "'url', or 'host', 'database' and 'user', are required"),
        ("catalog:\n  postgres:\n    url: postgres://u@h/d\n    host: h\n", 4, "'host' and 'url' exclude each other"),
        ("catalog:\n  postgres:\n    host: h\n    database: d\n    user: u\n    port: 0\n", 6, "catalog.postgres.port must be a port"),
        ("catalog:\n  postgres:\n    host: h\n    database: d\n    user: u\n    tls: maybe\n", 6, "catalog.postgres.tls must be"),
        ("catalog:\n  postgres:\n    url: postgres://u@h/d\n", 3, "it needs storage.s3 (a shared bucket) too"),
        ("catalog:\n  sqlite: x\n", 2, "unknown key 'sqlite'"),
        ("replica:\n  name: a\n", 2, "replica: 'name', 'advertise-url' and 'secret-file' are required"),
        (
            "replica:\n  name: a b\n  advertise-url: http://10.0.0.5:5000\n  secret-file: /nonexistent\n", 2,
            "replica.name must be 1-64 letters"
        ),
        (
            "replica:\n  name: a\n  advertise-url: 10.0.0.5:5000\n  secret-file: /nonexistent\n", 3,
            "replica.advertise-url must be http(s)://host:port"
        ),
        (
            "replica:\n  name: a\n  advertise-url: http://10.0.0.5:5000/path\n  secret-file: /nonexistent\n", 3,
            "replica.advertise-url must be http(s)://host:port"
        ),
        ("replica:\n  name: a\n  advertise-url: http://10.0.0.5:5000\n  secret-file: /nonexistent\n", 4, "cannot be read"),
        ("proxy:\n  listen: 127.0.0.1:3128\n", 2, "'listen' (HOST:PORT) and 'ca'"),
        ("proxy:\n  listen: 3128\n  ca: {certificate: a, key: b}\n", 2, "proxy.listen must be HOST:PORT"),
        ("listen: 127.0.0.1:5000\nproxy:\n  listen: 127.0.0.1:5000\n  ca: {certificate: a, key: b}\n", 3, "another address than"),
        ("proxy:\n  listen: 127.0.0.1:3128\n  ca: {certificate: a}\n", 3, "'certificate' and 'key' are both required"),
        (
            "proxy:\n  listen: 127.0.0.1:3128\n  ca: {certificate: a, key: b}\n  tunnel:\n    - ok.example\n    - \"*\"\n", 6,
            "never * alone"
        ),
        ("proxy:\n  listen: 127.0.0.1:3128\n  ca: {certificate: a, key: b}\n  tunnel: [10.0.0.1]\n", 4, "never an address"),
        ("proxy:\n  listen: 127.0.0.1:3128\n  ca: {certificate: a, key: b}\n  tunnel: [\"a.*.example\"]\n", 4, "is not a host name"),
        ("proxy:\n  listen: 127.0.0.1:3128\n  ca: {certificate: a, key: b}\n  tunnel: [\"x.example:70000\"]\n", 4, "is not a host name"),
        ("proxy:\n  listen: 127.0.0.1:3128\n  ca: {certificate: a, key: b}\n  authenticate: true\n", 4, "configure auth first"),
        ("proxy:\n  listen: 127.0.0.1:3128\n  ca: {certificate: a, key: b}\n  mitm: true\n", 4, "unknown key 'mitm'"),
    ])
    func mistakesNameTheLine(yaml: String, line: Int, message: String) {
        do {
            _ = try Configuration.parse(yaml, file: "archway.yaml")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.location.line == line, "\(error)")
            #expect(error.location.file == "archway.yaml")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func objectStorageKeysComeFromFilesAndTheSecretOnlyFromAPrivateOne() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archway-s3-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (access, secret) = (directory.appendingPathComponent("access"), directory.appendingPathComponent("secret"))
        try "AKIDEXAMPLE\n".write(to: access, atomically: true, encoding: .utf8)
        try "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n".write(to: secret, atomically: true, encoding: .utf8)
        chmod(secret.path, 0o644)
        func yaml(_ endpoint: String, extra: String = "") -> String {
            """
            storage:
              max-size: 50GiB
              s3:
                endpoint: \(endpoint)
                bucket: archway-cache
                access-key-file: access
                secret-key-file: secret
                max-size: 2TiB
            \(extra)
            """
        }
        do {
            _ = try Configuration.parse(yaml("http://127.0.0.1:7480"), file: "archway.yaml", relativeTo: directory.path)
            Issue.record("a secret others can read was accepted")
        } catch {
            #expect(error.location.line == 7, "\(error)")
            #expect(error.message.contains("can be read by others (mode 644): chmod 600 it"), "\(error)")
        }
        chmod(secret.path, 0o600)
        let ceph = try Configuration.parse(yaml("http://127.0.0.1:7480"), file: "archway.yaml", relativeTo: directory.path)
        let storage = try #require(ceph.objectStorage)
        #expect(storage.endpoint == "http://127.0.0.1:7480" && storage.bucket == "archway-cache" && storage.region == "us-east-1")
        #expect(storage.accessKey == "AKIDEXAMPLE" && storage.secretKey == "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        #expect(storage.pathStyle, "S3-compatible stores: the bucket in the path")
        #expect(storage.maxSize == 2 << 40 && ceph.storageMaxSize == 50 << 30 && !storage.redirect)
        let aws = try Configuration.parse(
            yaml("https://s3.eu-west-1.amazonaws.com", extra: "    region: eu-west-1\n    redirect: true"), file: "archway.yaml",
            relativeTo: directory.path)
        #expect(aws.objectStorage?.pathStyle == false, "AWS: the bucket in the host name")
        #expect(aws.objectStorage?.region == "eu-west-1" && aws.objectStorage?.redirect == true)
        #expect(try Configuration.parse("listen: 127.0.0.1:5000\n", file: "a.yaml").objectStorage == nil, "no s3: a single node")

        // A shared catalog beside the bucket; its password only from a private file.
        let password = directory.appendingPathComponent("db-password")
        try "s3cret\n".write(to: password, atomically: true, encoding: .utf8)
        chmod(password.path, 0o600)
        let shared = try Configuration.parse(
            yaml("http://127.0.0.1:7480") + "catalog:\n  postgres:\n    host: db.internal\n    database: archway\n    user: archway\n"
                + "    port: 6432\n    tls: require\n    password-file: db-password\n",
            file: "archway.yaml", relativeTo: directory.path)
        #expect(
            shared.catalogDatabase
                == DatabaseAddress(host: "db.internal", port: 6432, user: "archway", password: "s3cret", database: "archway", tls: .require)
        )
        let byURL = try Configuration.parse(
            yaml("http://127.0.0.1:7480") + "catalog:\n  postgres:\n    url: postgres://archway@db:5432/cache?sslmode=disable\n",
            file: "archway.yaml", relativeTo: directory.path)
        #expect(byURL.catalogDatabase == DatabaseAddress(host: "db", user: "archway", database: "cache", tls: .disable))
        // A replica of that fleet: its secret long enough and private; it needs the shared catalog.
        let fleetSecret = directory.appendingPathComponent("fleet-secret")
        try "short".write(to: fleetSecret, atomically: true, encoding: .utf8)
        chmod(fleetSecret.path, 0o600)
        let replica = "replica:\n  name: r1\n  advertise-url: http://10.0.0.5:5000\n  secret-file: fleet-secret\n"
        let fleet = yaml("http://127.0.0.1:7480") + "catalog:\n  postgres:\n    url: postgres://archway@db/cache\n" + replica
        #expect(throws: LocatedError.self) { _ = try Configuration.parse(fleet, file: "archway.yaml", relativeTo: directory.path) }
        try String(repeating: "0123456789abcdef", count: 4).write(to: fleetSecret, atomically: true, encoding: .utf8)
        chmod(fleetSecret.path, 0o600)
        let member = try Configuration.parse(fleet, file: "archway.yaml", relativeTo: directory.path)
        #expect(
            member.replica
                == Configuration.Replica(
                    name: "r1", advertiseURL: "http://10.0.0.5:5000", secret: String(repeating: "0123456789abcdef", count: 4)))
        do {
            _ = try Configuration.parse(yaml("http://127.0.0.1:7480") + replica, file: "archway.yaml", relativeTo: directory.path)
            Issue.record("a replica without the shared catalog was accepted")
        } catch {
            #expect(error.message.contains("replica needs catalog.postgres"), "\(error)")
        }
        chmod(password.path, 0o640)
        #expect(throws: LocatedError.self) {
            _ = try Configuration.parse(
                yaml("http://127.0.0.1:7480") + "catalog:\n  postgres:\n    url: postgres://a@db/c\n    password-file: db-password\n",
                file: "archway.yaml", relativeTo: directory.path)
        }
    }

    @Test func adminsMustBeUsersOfTheHtpasswdFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("archway-htpasswd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try "alice:$2y$04$abcdefghijklmnopqrstuuJ9q2oQ1mS0Ykq2y8o1jvD3gM0Wl5m6S\n".write(to: file, atomically: true, encoding: .utf8)
        let good = try Configuration.parse("auth:\n  htpasswd: \(file.path)\n  admins: [alice]\n", file: "a.yaml")
        #expect(good.authentication?.admins == ["alice"])
        #expect(throws: LocatedError.self) {
            try Configuration.parse("auth:\n  htpasswd: \(file.path)\n  admins: [mallory]\n", file: "a.yaml")
        }
        do {
            _ = try Configuration.parse("auth:\n  htpasswd: \(file.path)\n  admins: [mallory]\n", file: "a.yaml")
        } catch {
            #expect("\(error)".contains("a.yaml:3") && "\(error)".contains("'mallory' is not a user"))
        }
    }

    @Test func binaryScansAreOnByDefaultAndBounded() throws {
        #expect(Configuration.embeddedDefault().binaries.verify)
        #expect(Configuration.embeddedDefault().binaries.maxLayerSize == 4 << 30)
        let configuration = try Configuration.parse("binaries:\n  verify: false\n  max-layer-size: 1GiB\n", file: "a.yaml")
        #expect(!configuration.binaries.verify)
        #expect(configuration.binaries.maxLayerSize == 1 << 30)
    }

    @Test func aConfigurationFileWithoutPoliciesHasNone() throws {
        #expect(try Configuration.parse("listen: 127.0.0.1:5000\n", file: "a.yaml").policiesPath == nil)
    }

    @Test func theEmbeddedDefault() {
        let configuration = Configuration.embeddedDefault(
            environment: ["XDG_CACHE_HOME": "/tmp/xdg", "HOME": "/home/u"], currentDirectory: "/nonexistent")
        #expect(configuration.listen.description == "127.0.0.1:5000")
        #expect(configuration.storagePath == "/tmp/xdg/archway")
        #expect(configuration.defaultUpstream == "docker.io")
        #expect(configuration.upstreams.first?.url == "https://registry-1.docker.io")
        #expect(configuration.policiesPath == nil)
        let home = Configuration.embeddedDefault(environment: ["HOME": "/home/u"], currentDirectory: "/nonexistent")
        #expect(home.storagePath == "/home/u/.cache/archway")
    }

    @Test(arguments: [("200GiB", Int64(200) << 30), ("500MB", 500_000_000), ("1024", 1024), ("0B", 0)])
    func sizes(text: String, bytes: Int64) {
        #expect(ByteSize.parse(text) == bytes)
    }

    @Test(arguments: ["-1GiB", "GiB", "1.5GiB", "99999999999999TiB"])
    func badSizes(text: String) {
        #expect(ByteSize.parse(text) == nil)
    }

    @Test func jsonLogLinesAreOneJSONObjectEach() throws {
        let pipe = Pipe()
        var handler = JSONLogHandler(label: "test", output: JSONLogOutput(handle: pipe.fileHandleForWriting))
        handler[metadataKey: "path"] = "/v2/a\"b\nc"
        handler.log(
            event: LogEvent(level: .notice, message: "hello", metadata: ["status": "404"], source: "t", file: "f", function: "g", line: 1))
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.hasSuffix("}\n"))
        #expect(text.split(separator: "\n").count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(object["msg"] == "hello")
        #expect(object["level"] == "notice")
        #expect(object["path"] == "/v2/a\"b\nc")
        #expect(object["status"] == "404")
        let timestamp = try #require(object["ts"])
        #expect(timestamp.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(timestamp)")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let logged = try #require(formatter.date(from: timestamp))
        #expect(abs(logged.timeIntervalSinceNow) < 60)
    }

    @Test func theProxySectionReadsItsListenerCATunnelsAndAuthentication() throws {
        let yaml = """
            proxy:
              listen: 0.0.0.0:3128
              ca: {certificate: ca.crt, key: /etc/archway/ca.key}
              tunnel: ["*.githubusercontent.com", "registry.corp:8443"]
            """
        let configuration = try Configuration.parse(yaml, file: "archway.yaml", relativeTo: "/etc/archway")
        let proxy = try #require(configuration.proxy)
        #expect(proxy.listen.description == "0.0.0.0:3128")
        #expect(proxy.certificate == "/etc/archway/ca.crt")
        #expect(proxy.key == "/etc/archway/ca.key")
        #expect(proxy.tunnels.map(\.description) == ["*.githubusercontent.com", "registry.corp:8443"])
        #expect(!proxy.authenticate)
        #expect(try Configuration.parse("listen: 127.0.0.1:5000\n", file: "archway.yaml").proxy == nil)
    }
}
