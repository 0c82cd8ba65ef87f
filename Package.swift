// swift-tools-version:6.2
import PackageDescription

/// `ARCHWAY_FUZZ=1` (make fuzz) instruments the parsers for libFuzzer and adds the fuzz targets.
let fuzzing = Context.environment["ARCHWAY_FUZZ"] == "1"

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]
let instrumented: [SwiftSetting] = strict + (fuzzing ? [.unsafeFlags(["-sanitize=fuzzer"])] : [])

let package = Package(
    name: "archway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "archway", targets: ["archway"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
    ],
    targets: [
        // The vocabulary: pure values, no I/O.
        .target(
            name: "OCI",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: instrumented
        ),
        .target(name: "Policies", dependencies: ["OCI", .product(name: "Yams", package: "Yams")], swiftSettings: instrumented),
        .target(
            name: "Cache",
            dependencies: [
                "OCI",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // libcurl, through a system-library target and a header of typed inline wrappers.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "RegistryClient",
            dependencies: [
                "OCI", "CCurl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: instrumented
        ),
        // Object storage (S3): the Signature V4 signer, the S3 client (over RegistryClient's
        // libcurl transport) and the blob store with a local tier over a bucket.
        .target(
            name: "ObjectStorage",
            dependencies: [
                "OCI", "Cache", "RegistryClient", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // What replicas share through PostgreSQL: the catalog (and, with the scale-out work, the
        // leases of downloads).
        .target(
            name: "SharedState",
            dependencies: [
                "OCI", "Cache",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // zlib and libzstd, for reading layers.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // What an image's layers hold: decompression, tar, the layered filesystem, ELF headers,
        // and the entrypoint followed to the binary that runs. Pure: bytes in, a report out.
        .target(name: "LayerInspection", dependencies: ["CZlib", "CZstd"], swiftSettings: instrumented),
        .target(
            name: "Proxy",
            dependencies: [
                "OCI", "Policies", "Cache", "RegistryClient", "LayerInspection",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ProxyServer",
            dependencies: [
                "Proxy", "OCI", "InterceptionCA",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP2", package: "swift-nio-extras"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: instrumented
        ),
        // The proxy mode's CA: name-constrained, signing short-lived leaves. Keys stay here.
        .target(
            name: "InterceptionCA",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: strict
        ),
        // The composition root as a library, so tests start exactly what `archway serve` starts.
        .target(
            name: "ArchwayApp",
            dependencies: [
                "OCI", "Policies", "Cache", "RegistryClient", "ObjectStorage", "SharedState", "Proxy", "ProxyServer", "LayerInspection",
                "InterceptionCA",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "archway",
            dependencies: [
                "ArchwayApp", "OCI", "Policies", "Proxy", "Cache", "RegistryClient", "SharedState", "LayerInspection", "ProxyServer",
                "InterceptionCA",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        // `make cluster`: the fleet of the scale-out tests, started for a person to pull through.
        .executableTarget(
            name: "archway-cluster",
            dependencies: ["ArchwayTesting", "ObjectStorage", "RegistryClient", .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/ArchwayCluster",
            swiftSettings: strict),
        .target(
            name: "ArchwayTesting",
            dependencies: [
                "OCI", "RegistryClient", "Proxy", "ArchwayApp", "ObjectStorage", "LayerInspection", "CZlib", "CZstd",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "OCITests", dependencies: ["OCI", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        .testTarget(name: "PoliciesTests", dependencies: ["Policies", "OCI"], swiftSettings: strict),
        .testTarget(name: "LayerInspectionTests", dependencies: ["LayerInspection", "ArchwayTesting"], swiftSettings: strict),
        .testTarget(
            name: "CacheTests",
            dependencies: ["Cache", "OCI", .product(name: "NIOCore", package: "swift-nio"), .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        .testTarget(
            name: "RegistryClientTests",
            dependencies: [
                "RegistryClient", "OCI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ProxyTests",
            dependencies: [
                "Proxy", "ArchwayTesting", "OCI", "Cache", "RegistryClient", "Policies",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ProxyServerTests",
            dependencies: [
                "ProxyServer", "ArchwayTesting", "ArchwayApp", "OCI", "Proxy", "RegistryClient",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "X509", package: "swift-certificates"),
                "InterceptionCA",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ArchwayAppTests",
            dependencies: [
                "ArchwayApp", "ProxyServer", "Policies", "SharedState", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "HarnessTests", dependencies: ["ArchwayTesting"], swiftSettings: strict),
        .testTarget(
            name: "ObjectStorageTests",
            dependencies: [
                "ObjectStorage", "OCI", "Cache", "RegistryClient", "ArchwayTesting", .product(name: "NIOCore", package: "swift-nio"),
            ], exclude: ["SigV4Suite"],
            swiftSettings: strict),
        .testTarget(
            name: "SharedStateTests",
            dependencies: [
                "SharedState", "Cache", "OCI", "Proxy", "ArchwayTesting", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Real software: docker-registry upstream, skopeo and containerd clients, the archway binary.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ArchwayTesting", "RegistryClient", "ObjectStorage", "OCI", "Cache",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)

if fuzzing {
    // libFuzzer's runtime without main (make fuzz finds it in the toolchain).
    let runtime = Context.environment["ARCHWAY_FUZZ_RUNTIME"] ?? ""
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"))
    for (name, dependencies) in [
        ("FuzzReference", ["OCI", "ProxyServer"]), ("FuzzPolicy", ["OCI", "Policies"]), ("FuzzManifest", ["OCI"]), ("FuzzRange", ["OCI"]),
        ("FuzzUpstreamAnswers", ["OCI", "RegistryClient"]), ("FuzzLayer", ["LayerInspection"]),
    ] {
        package.targets.append(
            .executableTarget(
                name: name,
                dependencies: (dependencies + ["FuzzSupport"]).map { .target(name: $0) },
                path: "Fuzz/\(name)",
                swiftSettings: strict + [.unsafeFlags(["-sanitize=fuzzer"])],
                linkerSettings: [.unsafeFlags([runtime, "-lstdc++"])]
            )
        )
        package.products.append(.executable(name: name, targets: [name]))
    }
}
