import Cache
import Foundation
import Logging
import OCI
import PostgresNIO
import Synchronization

/// Where the shared database is: PostgreSQL's connection parameters, as configured.
public struct DatabaseAddress: Sendable, Hashable {
    public enum TLSMode: String, Sendable, Hashable {
        /// Plain TCP (a database on this machine or a trusted network).
        case disable
        /// TLS when the server offers it (libpq's default).
        case prefer
        /// TLS or no connection.
        case require

        var postgres: PostgresClient.Configuration.TLS {
            switch self {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
        }
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Parses `postgres://user@host[:port]/database[?sslmode=disable|prefer|require]` (also
    /// `postgresql://`); nil when it is not one. A password belongs in a file, not in the URL:
    /// one given here is refused (nil).
    public init?(url: String) {
        let text: Substring
        if url.hasPrefix("postgres://") {
            text = url.dropFirst("postgres://".count)
        } else if url.hasPrefix("postgresql://") {
            text = url.dropFirst("postgresql://".count)
        } else {
            return nil
        }
        let (main, query) = text.firstIndex(of: "?").map { (text[..<$0], text[text.index(after: $0)...]) } ?? (text, "")
        guard let at = main.lastIndex(of: "@"), let slash = main[at...].firstIndex(of: "/") else { return nil }
        let user = String(main[..<at])
        let hostPort = main[main.index(after: at)..<slash]
        let database = String(main[main.index(after: slash)...])
        guard !user.isEmpty, !user.contains(":"), !database.isEmpty, !database.contains("/") else { return nil }
        var host = String(hostPort)
        var port = 5432
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            guard let number = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(number) else { return nil }
            port = number
            host = String(hostPort[..<colon])
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || "-.:".contains($0) }) else { return nil }
        var tls = TLSMode.prefer
        for parameter in query.split(separator: "&") {
            let pair = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, pair[0] == "sslmode", let mode = TLSMode(rawValue: pair[1]) else { return nil }
            tls = mode
        }
        self.init(host: host, port: port, user: user, database: database, tls: tls)
    }
}

/// The catalog's database did not answer, or refused: answered `503 UNAVAILABLE` to a client
/// (the details stay in the log).
public struct CatalogUnavailable: Error, CustomStringConvertible, DependencyFailure {
    /// What was being done: "read a tag".
    public let operation: String
    public let reason: String

    public var description: String { "the catalog database could not \(operation): \(reason)" }
    public var failedDependency: String? { "the catalog database" }
}

extension PostgresCatalog {
    /// A call to the database: the schema made sure of first, the whole bounded by
    /// ``callTimeout``, every failure a ``CatalogUnavailable``.
    func call<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await ensureSchema()
        return try await bounded(operation, timeout: callTimeout) { try await body(self.client) }
    }

    /// ``call(_:_:)`` of a statement whose rows (none) are read to the end.
    func execute(_ operation: String, _ body: @escaping @Sendable (PostgresClient) async throws -> PostgresRowSequence) async throws {
        try await call(operation) { client in
            for try await _ in try await body(client) {}
        }
    }

    /// ``call(_:_:)`` in one transaction.
    func transaction(_ operation: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> Void) async throws {
        try await call(operation) { client in
            try await client.withTransaction(logger: self.logger) { connection in try await body(connection) }
        }
    }

    /// Runs `body`, failing with ``CatalogUnavailable`` when it fails or takes longer than `timeout`.
    func bounded<T: Sendable>(_ operation: String, timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let value = first else {
                    throw CatalogUnavailable(operation: operation, reason: "no answer within \(timeout)")
                }
                return value
            }
        } catch let error as CatalogUnavailable {
            throw error
        } catch is CancellationError where Task.isCancelled {
            throw CancellationError()
        } catch {
            throw CatalogUnavailable(operation: operation, reason: String(reflecting: error))
        }
    }

    // MARK: - Schema

    /// Versioned migrations: each runs once, in order, under an advisory lock, so replicas
    /// starting together do not race. A database newer than this Archway is refused.
    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (
            1, "the catalog",
            [
                """
                CREATE TABLE content (
                    id BIGSERIAL NOT NULL,
                    digest TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    media_type TEXT,
                    size BIGINT NOT NULL,
                    stored_at DOUBLE PRECISION NOT NULL,
                    last_access DOUBLE PRECISION NOT NULL
                )
                """,
                "CREATE INDEX content_by_access ON content (last_access, id)",
                """
                CREATE TABLE tag (
                    upstream TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    tag TEXT NOT NULL,
                    accept TEXT NOT NULL,
                    rule TEXT NOT NULL DEFAULT '',
                    digest TEXT NOT NULL REFERENCES content (digest) ON DELETE CASCADE,
                    validated_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (upstream, repository, tag, accept, rule)
                )
                """,
                "CREATE INDEX tag_by_digest ON tag (digest)",
                """
                CREATE TABLE link (
                    id BIGSERIAL NOT NULL,
                    digest TEXT NOT NULL,
                    upstream TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    source_upstream TEXT NOT NULL,
                    source_repository TEXT NOT NULL,
                    PRIMARY KEY (digest, upstream, repository, source_upstream, source_repository)
                )
                """,
                """
                CREATE TABLE presence (
                    digest TEXT NOT NULL,
                    upstream TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    PRIMARY KEY (digest, upstream, repository)
                )
                """,
                """
                CREATE TABLE mismatch (
                    repository TEXT NOT NULL,
                    reference TEXT NOT NULL,
                    client_platform TEXT NOT NULL,
                    image_platforms TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    rule TEXT,
                    count BIGINT NOT NULL,
                    first_seen DOUBLE PRECISION NOT NULL,
                    last_seen DOUBLE PRECISION NOT NULL,
                    last_client TEXT,
                    user_agent TEXT,
                    PRIMARY KEY (repository, reference, client_platform)
                )
                """,
                "CREATE INDEX mismatch_by_last_seen ON mismatch (last_seen)",
            ]
        ),
        (
            2, "leases of downloads",
            [
                """
                CREATE TABLE fill_lease (
                    digest TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    url TEXT NOT NULL,
                    scope TEXT,
                    expires DOUBLE PRECISION NOT NULL
                )
                """
            ]
        ),
        (
            3, "what images' binaries are",
            [
                """
                CREATE TABLE binary_scan (
                    image TEXT PRIMARY KEY,
                    platform TEXT NOT NULL,
                    report TEXT NOT NULL,
                    scanned_at DOUBLE PRECISION NOT NULL
                )
                """
            ]
        ),
    ]
    /// The advisory lock migrations hold (any number; the same for every replica).
    static let migrationLock: Int64 = 0x4152_4348_5741_5901

    /// The schema is made sure of once per process (again after a failure).
    func ensureSchema() async throws {
        if schemaReady.load(ordering: .acquiring) { return }
        let task = schema.withLock { task in
            if let task { return task }
            let started = Task { try await self.migrate() }
            task = started
            return started
        }
        do {
            try await task.value
            schemaReady.store(true, ordering: .releasing)
        } catch {
            schema.withLock { if $0 == task { $0 = nil } }
            throw error
        }
    }

    /// Applies the migrations this database lacks.
    public func migrate() async throws {
        let (client, logger) = (client, logger)
        try await bounded("prepare its schema", timeout: callTimeout * 6) {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS archway_schema (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL
                    )
                    """, logger: logger)
                var applied: Set<Int> = []
                for try await version in try await connection.query("SELECT version FROM archway_schema", logger: logger).decode(Int.self) {
                    applied.insert(version)
                }
                if let newest = applied.max(), let known = Self.migrations.last?.version, newest > known {
                    throw CatalogUnavailable(
                        operation: "use its schema", reason: "the database is at version \(newest), this Archway knows up to \(known)")
                }
                for migration in Self.migrations where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let now = Date().timeIntervalSince1970
                    try await connection.query(
                        "INSERT INTO archway_schema (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(now))",
                        logger: logger)
                    logger.notice("catalog schema migrated", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                }
            }
        }
    }

    // MARK: - Changes other replicas hear of

    /// A change a replica tells the others about, so they drop what they keep in memory of it.
    enum Change {
        case tag(TagKey)
        case content(Digest)
    }

    /// What travels in a notification (at most 8000 bytes: a longer one says "everything").
    struct Notice: Codable {
        var instance: String
        var upstream: String?
        var repository: String?
        var tag: String?
        var accept: String?
        var rule: String?
        var digest: String?
        var everything: Bool?
    }

    /// Sends a change in the transaction `connection` runs (delivered when it commits).
    func notify(_ connection: PostgresConnection, _ change: Change) async throws {
        var notice = Notice(instance: instance)
        switch change {
        case .tag(let key):
            (notice.upstream, notice.repository, notice.tag, notice.accept, notice.rule) =
                (key.upstream, key.repository, key.tag, key.accept, key.rule)
        case .content(let digest):
            notice.digest = digest.description
        }
        var payload = String(decoding: try JSONEncoder().encode(notice), as: UTF8.self)
        if payload.utf8.count > 7000 {
            payload = String(decoding: try JSONEncoder().encode(Notice(instance: instance, everything: true)), as: UTF8.self)
        }
        try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
    }

    /// Drops what memory holds of another replica's change.
    func apply(_ payload: String) {
        guard let notice = try? JSONDecoder().decode(Notice.self, from: Data(payload.utf8)), notice.instance != instance else { return }
        if notice.everything == true {
            forgetRecentTags()
        } else if let digest = notice.digest.flatMap(Digest.init) {
            forgetRecentTags(matching: { $0.descriptor.digest == digest })
        } else if let upstream = notice.upstream, let repository = notice.repository, let tag = notice.tag, let accept = notice.accept,
            let rule = notice.rule
        {
            var key = TagKey(upstream: upstream, repository: repository, tag: tag, accepting: [])
            (key.accept, key.rule) = (accept, rule)
            forgetRecentTag(key)
        }
    }

    /// Listens for other replicas' changes until cancelled. Whenever it (re)starts listening it
    /// forgets every tag in memory: changes made while it was not listening were not heard.
    func listenForChanges() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        self.forgetRecentTags()
                        for try await notification in notifications { self.apply(notification.payload) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("not hearing other replicas' catalog changes", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
