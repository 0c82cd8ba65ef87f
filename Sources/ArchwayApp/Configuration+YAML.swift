import Foundation
import NIOCore
import OCI
import ObjectStorage
import Policies
import ProxyServer
import SharedState

extension Configuration {
    /// Reads and validates a configuration file. Errors say `file:line: what is wrong`.
    public static func load(path: String) throws(LocatedError) -> Configuration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LocatedError(SourceLocation(file: path, line: 1), "cannot read the configuration: \(error.localizedDescription)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try parse(text, file: path, relativeTo: directory.isEmpty ? "." : directory)
    }

    /// Parses a configuration document. Relative paths in it are taken from `directory`.
    public static func parse(_ text: String, file: String, relativeTo directory: String = ".") throws(LocatedError) -> Configuration {
        guard let document = try YAMLValue.parse(text, file: file) else {
            throw LocatedError(SourceLocation(file: file, line: 1), "the configuration is empty")
        }
        let fallback = embeddedDefault()
        let keys = try document.mapping(
            allowedKeys: [
                "listen", "tls", "storage", "upstreams", "default-upstream", "tag-ttl", "offline", "policies", "mismatch-warning",
                "mismatch",
                "shutdown-timeout", "connect-timeout", "stall-timeout", "auth", "limits", "catalog", "replica", "binaries",
                "admin-listen", "proxy", "event-loops",
            ],
            context: "configuration"
        )
        var configuration = fallback
        // With a configuration file, policies come only from its `policies` key, never from
        // whatever ./policies happens to be beside the process.
        configuration.policiesPath = nil
        if let listen = keys["listen"] {
            let text = try listen.string("listen")
            guard let address = ListenAddress(text) else { throw listen.error("listen must be HOST:PORT, not '\(text)'") }
            configuration.listen = address
        }
        if let value = keys["admin-listen"] {
            let text = try value.string("admin-listen")
            guard let address = ListenAddress(text) else { throw value.error("admin-listen must be HOST:PORT, not '\(text)'") }
            guard address.description != configuration.listen.description else {
                throw value.error("admin-listen must be another address than listen (\(configuration.listen))")
            }
            configuration.adminListen = address
        }
        if let tls = keys["tls"] {
            let entries = try tls.mapping(allowedKeys: ["certificate", "key", "client-ca"], context: "tls")
            guard let certificate = entries["certificate"], let key = entries["key"] else {
                throw tls.error("tls: 'certificate' and 'key' are both required (PEM files)")
            }
            func readable(_ value: YAMLValue, _ what: String) throws(LocatedError) -> String {
                let path = absolute(try value.string(what), relativeTo: directory)
                guard FileManager.default.isReadableFile(atPath: path) else { throw value.error("\(what) '\(path)' cannot be read") }
                return path
            }
            configuration.tls = TLS(
                certificate: try readable(certificate, "tls.certificate"),
                key: try readable(key, "tls.key"),
                clientCA: try entries["client-ca"].map { value throws(LocatedError) in try readable(value, "tls.client-ca") }
            )
        }
        if let storage = keys["storage"] {
            let entries = try storage.mapping(allowedKeys: ["path", "max-size", "s3"], context: "storage")
            if let path = entries["path"] { configuration.storagePath = absolute(try path.string("storage.path"), relativeTo: directory) }
            if let maxSize = entries["max-size"] { configuration.storageMaxSize = try maxSize.size("storage.max-size") }
            if let s3 = entries["s3"] { configuration.objectStorage = try parseObjectStorage(s3, relativeTo: directory) }
        }
        if let upstreams = keys["upstreams"] {
            configuration.upstreams = try parseUpstreams(upstreams, relativeTo: directory)
            configuration.defaultUpstream =
                configuration.upstreams.contains { $0.name == "docker.io" } ? "docker.io" : configuration.upstreams[0].name
        }
        if let value = keys["default-upstream"] {
            let name = try value.string("default-upstream")
            guard configuration.upstreams.contains(where: { $0.name == name || $0.aliases.contains(name) }) else {
                throw value.error("default-upstream '\(name)' is not among the upstreams")
            }
            configuration.defaultUpstream = name
        }
        if let value = keys["tag-ttl"] {
            let text = try value.string("tag-ttl")
            guard let ttl = Duration(parsing: text) else {
                throw value.error("tag-ttl must be a duration such as 5m, 30s or 0, not '\(text)'")
            }
            configuration.tagTTL = ttl
        }
        if let value = keys["offline"] { configuration.offline = try value.bool("offline") }
        if let value = keys["mismatch-warning"] { configuration.mismatchWarning = try value.bool("mismatch-warning") }
        if let value = keys["mismatch"] {
            let text = try value.string("mismatch")
            guard let action = MismatchAction(rawValue: text) else { throw value.error("mismatch must be warn or refuse, not '\(text)'") }
            configuration.mismatch = action
        }
        if let timeout = try keys["shutdown-timeout"]?.positiveDuration("shutdown-timeout") { configuration.shutdownTimeout = timeout }
        if let timeout = try keys["connect-timeout"]?.positiveDuration("connect-timeout") { configuration.connectTimeout = timeout }
        if let timeout = try keys["stall-timeout"]?.positiveDuration("stall-timeout") { configuration.stallTimeout = timeout }
        if let value = keys["limits"] { try parseLimits(value, into: &configuration) }
        if let value = keys["event-loops"] {
            let text = try value.string("event-loops")
            if text != "auto" {
                guard let loops = Int(text), (1...256).contains(loops) else {
                    throw value.error("event-loops must be auto (one per core) or a whole number from 1 to 256, not '\(text)'")
                }
                configuration.eventLoops = loops
            }
        }
        if let value = keys["policies"] { configuration.policiesPath = absolute(try value.string("policies"), relativeTo: directory) }
        if let value = keys["auth"] {
            let entries = try value.mapping(allowedKeys: ["htpasswd", "required", "admins"], context: "auth")
            guard let file = entries["htpasswd"] else {
                throw value.error("auth: 'htpasswd' is required (a file of user:bcrypt-hash lines)")
            }
            let path = absolute(try file.string("auth.htpasswd"), relativeTo: directory)
            let users = try Self.htpasswd(path, from: file)
            var admins: [String] = []
            if let value = entries["admins"] {
                admins = try value.strings("auth.admins")
                if let stranger = admins.first(where: { users[$0] == nil }) {
                    throw value.error("auth.admins: '\(stranger)' is not a user of \(path)")
                }
            }
            configuration.authentication = Authentication(
                users: users, required: try entries["required"]?.bool("auth.required") ?? true, admins: admins)
        }
        if let value = keys["catalog"] {
            let entries = try value.mapping(allowedKeys: ["postgres"], context: "catalog")
            if let postgres = entries["postgres"] {
                configuration.catalogDatabase = try parseDatabase(postgres, relativeTo: directory)
                guard configuration.objectStorage != nil else {
                    throw postgres.error(
                        "catalog.postgres describes blobs every replica can read: it needs storage.s3 (a shared bucket) too")
                }
            }
        }
        if let value = keys["proxy"] { configuration.proxy = try parseProxy(value, configuration: configuration, relativeTo: directory) }
        if let value = keys["binaries"] {
            let entries = try value.mapping(allowedKeys: ["verify", "max-layer-size"], context: "binaries")
            if let verify = entries["verify"] { configuration.binaries.verify = try verify.bool("binaries.verify") }
            if let size = entries["max-layer-size"] {
                let bytes = try size.size("binaries.max-layer-size")
                guard bytes >= 1 << 20 else { throw size.error("binaries.max-layer-size must be at least 1MiB") }
                configuration.binaries.maxLayerSize = bytes
            }
        }
        if let value = keys["replica"] {
            let entries = try value.mapping(allowedKeys: ["name", "advertise-url", "secret-file"], context: "replica")
            guard let name = entries["name"], let advertise = entries["advertise-url"], let secretValue = entries["secret-file"] else {
                throw value.error("replica: 'name', 'advertise-url' and 'secret-file' are required")
            }
            let nameText = try name.string("replica.name")
            guard !nameText.isEmpty, nameText.count <= 64,
                nameText.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
            else { throw name.error("replica.name must be 1-64 letters, digits, '-', '_' or '.', not '\(nameText)'") }
            let url = try advertise.string("replica.advertise-url")
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.count > 8,
                !url.dropFirst(8).contains("/") || url.hasSuffix("/")
            else {
                throw advertise.error(
                    "replica.advertise-url must be http(s)://host:port, where the other replicas reach this one, not '\(url)'")
            }
            let secret = try secretFile(secretValue, "replica.secret-file", relativeTo: directory)
            guard secret.utf8.count >= 32 else {
                throw secretValue.error("replica.secret-file must hold at least 32 characters (e.g. openssl rand -hex 32)")
            }
            guard configuration.catalogDatabase != nil else {
                throw value.error("replica needs catalog.postgres: the replicas elect who downloads in the shared catalog")
            }
            configuration.replica = Replica(name: nameText, advertiseURL: url, secret: secret)
        }
        if let upstream = configuration.upstreams.first(where: \.isPrivate), configuration.authentication == nil,
            configuration.tls?.clientCA == nil
        {
            throw LocatedError(
                SourceLocation(file: file, line: 1),
                "upstream \(upstream.name) is private, but no client can authenticate: configure auth.htpasswd or tls.client-ca"
            )
        }
        return configuration
    }

    /// `storage.s3:` a bucket, and the files holding its keys (the secret's readable by no one else).
    private static func parseObjectStorage(_ value: YAMLValue, relativeTo directory: String) throws(LocatedError) -> ObjectStorage {
        let entries = try value.mapping(
            allowedKeys: ["endpoint", "region", "bucket", "access-key-file", "secret-key-file", "path-style", "max-size", "redirect"],
            context: "storage.s3")
        func required(_ key: String, _ what: String) throws(LocatedError) -> YAMLValue {
            guard let entry = entries[key] else { throw value.error("storage.s3: '\(key)' is required (\(what))") }
            return entry
        }
        let endpointValue = try required("endpoint", "the S3 endpoint, such as https://s3.eu-west-1.amazonaws.com")
        let bucketValue = try required("bucket", "the bucket's name")
        let endpoint = try endpointValue.string("storage.s3.endpoint")
        let bucket = try bucketValue.string("storage.s3.bucket")
        let region = try entries["region"]?.string("storage.s3.region") ?? "us-east-1"
        guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw entries["region"]!.error("storage.s3.region must be a region such as eu-west-1, not '\(region)'")
        }
        // AWS names buckets in the host; S3-compatible stores (Ceph, MinIO) usually in the path.
        let pathStyle = try entries["path-style"]?.bool("storage.s3.path-style") ?? !endpoint.lowercased().contains("amazonaws.com")
        guard S3Location(endpoint: endpoint, region: region, bucket: "archway", pathStyle: pathStyle) != nil else {
            throw endpointValue.error("storage.s3.endpoint must be http(s)://host[:port] with nothing after, not '\(endpoint)'")
        }
        guard S3Location.isValidBucket(bucket) else {
            throw bucketValue.error("storage.s3.bucket must be 3-63 lowercase letters, digits, '-' or '.', not '\(bucket)'")
        }
        let maxSize = try entries["max-size"]?.size("storage.s3.max-size")
        let redirect = try entries["redirect"]?.bool("storage.s3.redirect") ?? false
        let accessKeyFile = try required("access-key-file", "a file holding the key id")
        let accessKeyPath = absolute(try accessKeyFile.string("storage.s3.access-key-file"), relativeTo: directory)
        guard let accessText = try? String(contentsOfFile: accessKeyPath, encoding: .utf8) else {
            throw accessKeyFile.error("storage.s3.access-key-file '\(accessKeyPath)' cannot be read")
        }
        let accessKey = accessText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !accessKey.isEmpty, !accessKey.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw accessKeyFile.error("storage.s3.access-key-file '\(accessKeyPath)' must hold one key on one line")
        }
        let secretKey = try secretFile(
            try required("secret-key-file", "a file holding the secret key"), "storage.s3.secret-key-file", relativeTo: directory)
        return ObjectStorage(
            endpoint: endpoint, region: region, bucket: bucket, accessKey: accessKey, secretKey: secretKey, pathStyle: pathStyle,
            maxSize: maxSize, redirect: redirect)
    }

    /// `catalog.postgres:` a `url`, or `host`/`port`/`database`/`user`/`tls`; the password from
    /// a file only others cannot read.
    private static func parseDatabase(_ value: YAMLValue, relativeTo directory: String) throws(LocatedError) -> DatabaseAddress {
        let entries = try value.mapping(
            allowedKeys: ["url", "host", "port", "database", "user", "tls", "password-file"], context: "catalog.postgres")
        var address: DatabaseAddress
        if let url = entries["url"] {
            let text = try url.string("catalog.postgres.url")
            guard let parsed = DatabaseAddress(url: text) else {
                throw url.error(
                    "catalog.postgres.url must be postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require], with the password in password-file, not '\(text)'"
                )
            }
            for key in ["host", "port", "database", "user", "tls"] where entries[key] != nil {
                throw entries[key]!.error("catalog.postgres: '\(key)' and 'url' exclude each other")
            }
            address = parsed
        } else {
            guard let host = entries["host"], let database = entries["database"], let user = entries["user"] else {
                throw value.error("catalog.postgres: 'url', or 'host', 'database' and 'user', are required")
            }
            address = DatabaseAddress(
                host: try host.string("catalog.postgres.host"), user: try user.string("catalog.postgres.user"),
                database: try database.string("catalog.postgres.database"))
            if let port = entries["port"] {
                let text = try port.string("catalog.postgres.port")
                guard let number = Int(text), (1...65535).contains(number) else {
                    throw port.error("catalog.postgres.port must be a port from 1 to 65535, not '\(text)'")
                }
                address.port = number
            }
            if let tls = entries["tls"] {
                let text = try tls.string("catalog.postgres.tls")
                guard let mode = DatabaseAddress.TLSMode(rawValue: text) else {
                    throw tls.error("catalog.postgres.tls must be disable, prefer or require, not '\(text)'")
                }
                address.tls = mode
            }
        }
        if let file = entries["password-file"] {
            address.password = try secretFile(file, "catalog.postgres.password-file", relativeTo: directory)
        }
        return address
    }

    /// The one line of a file others cannot read (a password, a key).
    static func secretFile(_ value: YAMLValue, _ key: String, relativeTo directory: String) throws(LocatedError) -> String {
        let path = absolute(try value.string(key), relativeTo: directory)
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber,
            let text = try? String(contentsOfFile: path, encoding: .utf8)
        else {
            throw value.error("\(key) '\(path)' cannot be read")
        }
        if mode.intValue & 0o077 != 0 {
            throw value.error("\(key) '\(path)' can be read by others (mode \(String(mode.intValue & 0o777, radix: 8))): chmod 600 it")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty, !secret.contains(where: \.isNewline) else { throw value.error("\(key) '\(path)' must hold one line") }
        return secret
    }

    /// `limits:`: what clients may hold of the server.
    private static func parseLimits(_ value: YAMLValue, into configuration: inout Configuration) throws(LocatedError) {
        let entries = try value.mapping(
            allowedKeys: ["connections", "request-timeout", "handshake-timeout", "write-timeout", "http2-streams", "streamed-responses"],
            context: "limits")
        func count(_ key: String, _ range: ClosedRange<Int>) throws(LocatedError) -> Int? {
            guard let entry = entries[key] else { return nil }
            let text = try entry.string("limits.\(key)")
            guard let number = Int(text), range.contains(number) else {
                throw entry.error("limits.\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
            }
            return number
        }
        func timeout(_ key: String) throws(LocatedError) -> TimeAmount? {
            guard let entry = entries[key] else { return nil }
            return .nanoseconds(try entry.positiveDuration("limits.\(key)").totalNanoseconds)
        }
        if let connections = try count("connections", 16...1_000_000) { configuration.connectionLimits.maxConnections = connections }
        if let streams = try count("http2-streams", 1...1000) { configuration.connectionLimits.maxConcurrentStreams = streams }
        if let responses = try count("streamed-responses", 1...1_000_000) { configuration.streamedResponses = responses }
        if let request = try timeout("request-timeout") { configuration.connectionLimits.requestTimeout = request }
        if let handshake = try timeout("handshake-timeout") { configuration.connectionLimits.handshakeTimeout = handshake }
        if let write = try timeout("write-timeout") { configuration.connectionLimits.writeTimeout = write }
    }

    private static func parseUpstreams(_ value: YAMLValue, relativeTo directory: String) throws(LocatedError) -> [Upstream] {
        var upstreams: [Upstream] = []
        var hosts: Set<String> = []
        let entries = try value.sequence("upstreams")
        guard !entries.isEmpty else { throw value.error("upstreams must list at least one upstream") }
        for entry in entries {
            let keys = try entry.mapping(
                allowedKeys: ["name", "url", "aliases", "credentials", "allow", "private", "token-hosts", "redirect-hosts"],
                context: "upstream")
            guard let nameValue = keys["name"] else { throw entry.error("upstream: 'name' is required (the registry host clients know)") }
            guard let urlValue = keys["url"] else { throw entry.error("upstream: 'url' is required (where Archway fetches)") }
            let name = try nameValue.string("upstream name").lowercased()
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || ".-:_[]".contains($0) }),
                name.first?.isLetter == true || name.first?.isNumber == true
            else {
                throw nameValue.error("upstream name '\(name)' must be a registry host such as ghcr.io or registry.local:5000")
            }
            let url = try urlValue.string("upstream url")
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.count > 8 else {
                throw urlValue.error("upstream url must start with http:// or https://, not '\(url)'")
            }
            var upstream = Upstream(name: name, url: url)
            if let aliases = keys["aliases"] { upstream.aliases = try aliases.strings("aliases").map { $0.lowercased() } }
            if let allow = keys["allow"] {
                upstream.allow = try allow.strings("allow")
                for pattern in upstream.allow {
                    do { _ = try Glob(pattern) } catch { throw allow.error("allow: \(error.reason)") }
                }
            }
            if let isPrivate = keys["private"] { upstream.isPrivate = try isPrivate.bool("private") }
            for (key, list) in [("token-hosts", \Upstream.tokenHosts), ("redirect-hosts", \Upstream.redirectHosts)] {
                guard let value = keys[key] else { continue }
                let hosts = try value.strings(key).map { $0.lowercased() }
                for host in hosts where host.isEmpty || host.contains(where: { "/ @?#*".contains($0) }) {
                    throw value.error("\(key): '\(host)' must be a host or host:port, without scheme, path or wildcard")
                }
                upstream[keyPath: list] = hosts
            }
            for host in [name] + upstream.aliases {
                guard hosts.insert(host).inserted else { throw entry.error("upstream host '\(host)' is configured twice") }
            }
            if let credentials = keys["credentials"] {
                let fields = try credentials.mapping(allowedKeys: ["username", "password", "password-file"], context: "credentials")
                guard let username = fields["username"] else { throw credentials.error("credentials: 'username' is required") }
                upstream.username = try username.string("credentials.username")
                if let password = fields["password"] {
                    upstream.password = try password.string("credentials.password")
                } else if let file = fields["password-file"] {
                    let path = absolute(try file.string("credentials.password-file"), relativeTo: directory)
                    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                        throw file.error("credentials.password-file '\(path)' cannot be read")
                    }
                    upstream.password = text.trimmingCharacters(in: .whitespacesAndNewlines)
                } else {
                    throw credentials.error("credentials: 'password' or 'password-file' is required")
                }
            }
            upstreams.append(upstream)
        }
        return upstreams
    }

    /// `user:hash` lines; only bcrypt hashes (`$2y$`, `$2b$`, `$2a$`, as `htpasswd -B` writes).
    private static func htpasswd(_ path: String, from value: YAMLValue) throws(LocatedError) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw value.error("auth.htpasswd '\(path)' cannot be read")
        }
        var users: [String: String] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let entry = line.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            guard let colon = entry.firstIndex(of: ":"), colon != entry.startIndex else {
                throw LocatedError(SourceLocation(file: path, line: index + 1), "expected user:bcrypt-hash")
            }
            let hash = String(entry[entry.index(after: colon)...])
            guard ["$2y$", "$2b$", "$2a$"].contains(where: { hash.hasPrefix($0) }) else {
                throw LocatedError(SourceLocation(file: path, line: index + 1), "only bcrypt hashes are accepted (htpasswd -B)")
            }
            users[String(entry[..<colon])] = hash
        }
        return users
    }

    private static func absolute(_ path: String, relativeTo directory: String) -> String {
        path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
    }
}

/// Sizes as operators write them: `200GiB`, `500MB`, `1024`.
enum ByteSize {
    static func parse(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
            ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
        ]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Int64(number), value >= 0 else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        return Int64(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }
}

extension YAMLValue {
    /// A size such as `200GiB`; the error names `key` and the line.
    func size(_ key: String) throws(LocatedError) -> Int64 {
        let text = try string(key)
        guard let bytes = ByteSize.parse(text) else { throw error("\(key) must be a size such as 200GiB or 500MB, not '\(text)'") }
        return bytes
    }

    /// A duration such as `30s` that is more than zero; the error names `key` and the line.
    func positiveDuration(_ key: String) throws(LocatedError) -> Duration {
        let text = try string(key)
        guard let duration = Duration(parsing: text), duration > .zero else {
            throw error("\(key) must be a positive duration such as 30s, not '\(text)'")
        }
        return duration
    }
}

extension Configuration {
    /// `proxy:`: the listener for clients that use Archway as `HTTPS_PROXY`. The CA files are
    /// checked at start-up (`archway ca init` writes them from this same configuration).
    static func parseProxy(_ value: YAMLValue, configuration: Configuration, relativeTo directory: String) throws(LocatedError) -> Proxy {
        let entries = try value.mapping(allowedKeys: ["listen", "ca", "tunnel", "authenticate"], context: "proxy")
        guard let listenValue = entries["listen"], let caValue = entries["ca"] else {
            throw value.error("proxy: 'listen' (HOST:PORT) and 'ca' ({certificate, key}) are both required")
        }
        let text = try listenValue.string("proxy.listen")
        guard let listen = ListenAddress(text) else { throw listenValue.error("proxy.listen must be HOST:PORT, not '\(text)'") }
        for other in [configuration.listen] + (configuration.adminListen.map { [$0] } ?? []) where other.description == listen.description {
            throw listenValue.error("proxy.listen must be another address than \(other)")
        }
        let ca = try caValue.mapping(allowedKeys: ["certificate", "key"], context: "proxy.ca")
        guard let certificate = ca["certificate"], let key = ca["key"] else {
            throw caValue.error("proxy.ca: 'certificate' and 'key' are both required (PEM files; `archway ca init` writes them)")
        }
        var tunnels: [ProxyGate.TunnelEntry] = []
        if let tunnelValue = entries["tunnel"] {
            for item in try tunnelValue.sequence("proxy.tunnel") {
                let text = try item.string("each entry of proxy.tunnel")
                guard let entry = ProxyGate.TunnelEntry(text) else {
                    throw item.error(
                        "proxy.tunnel: '\(text)' is not a host name, *.domain, or either with :port (never * alone, never an address)")
                }
                tunnels.append(entry)
            }
        }
        var authenticate = false
        if let flag = entries["authenticate"] {
            authenticate = try flag.bool("proxy.authenticate")
            guard !authenticate || configuration.authentication != nil else {
                throw flag.error("proxy.authenticate checks Proxy-Authorization against auth.htpasswd: configure auth first")
            }
        }
        return Proxy(
            listen: listen, certificate: absolute(try certificate.string("proxy.ca.certificate"), relativeTo: directory),
            key: absolute(try key.string("proxy.ca.key"), relativeTo: directory), tunnels: tunnels, authenticate: authenticate)
    }
}
