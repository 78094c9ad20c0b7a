// swift-tools-version:6.2
import PackageDescription

/// One set of settings for every Swift target: Swift 6 language mode (strict concurrency) plus the
/// upcoming features Hummingbird enables.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "huskimo",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "huskimo-planner", targets: ["Planner"]),
        .executable(name: "huskimo-worker", targets: ["Worker"]),
        .executable(name: "huskimo-sandbox", targets: ["Sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // C libraries of the design, each behind a module map and a header of `static inline` shims.
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CIsal", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "CMalloc"),

        // The libraries the executables share, one target per layer under Sources/Shared/. Dependencies run one
        // way (Core ← Connectors ← Fleet ← executables); a layer importing one above it does not compile.
        //
        // Core: the C-library clients (AMQP, HTTP, S3, libpq) and plain support (errors, Secret, gzip, digests,
        // Day, UTCTime, Blocking, Backoff). Knows nothing of Twilio, Singular, jobs or configuration.
        .target(
            name: "HuskimoCore",
            dependencies: [
                "CRabbitMQ", "CCurl", "CLibPQ", "CZlib", "CCrypto", "CIsal", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Shared/Core",
            swiftSettings: swiftSettings
        ),
        // Connectors: the data contract (Resource catalogue, job and load messages, warehouse schema, staging
        // layout, metric names) and the API connectors with the extract hot path (JSON scanner, TSV writer,
        // date parsing and writing, page converters) in one module.
        .target(
            name: "HuskimoConnectors",
            dependencies: [
                "HuskimoCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Sources/Shared/Connectors",
            swiftSettings: swiftSettings
        ),
        // Fleet: configuration, queue driver, topology, retry policy, extract and load workers, the ledger,
        // planning, status, requeue, the metrics endpoint, and the library side of every command.
        .target(
            name: "HuskimoFleet",
            dependencies: [
                "HuskimoCore", "HuskimoConnectors",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Shared/Fleet",
            swiftSettings: swiftSettings
        ),
        // Test-only helpers (in-memory queue driver, staged-file reader, bucket and DDL set-up): never linked
        // into the shipped executables.
        .target(
            name: "HuskimoTesting",
            dependencies: ["HuskimoCore", "HuskimoConnectors", "HuskimoFleet"],
            path: "Sources/Shared/ForTesting",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Planner",
            dependencies: [
                "HuskimoFleet", "HuskimoConnectors", "HuskimoCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Worker",
            dependencies: [
                "HuskimoFleet", "HuskimoCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The sandbox API that stands in for Twilio and Singular in tests, the demo and benchmarks: on Core only.
        .target(name: "SandboxKit", dependencies: ["HuskimoCore"], swiftSettings: swiftSettings),
        // The fuzz targets (Tests/Fuzz/run.sh builds them with libFuzzer: -sanitize=fuzzer -DHUSKIMO_FUZZ); built
        // plainly, the same binary replays the corpus in the repo through every target (a regression run).
        .executableTarget(
            name: "HuskimoFuzz",
            dependencies: ["HuskimoCore", "HuskimoConnectors", "HuskimoFleet"],
            path: "Tests/Fuzz",
            exclude: ["corpus", "run.sh"],
            swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(name: "Sandbox", dependencies: ["SandboxKit", "HuskimoCore"], swiftSettings: swiftSettings),
        // Unit tests (no services, no network beyond loopback): the connectors' hot path alone (scanner, conversions),
        // and the fleet with everything under it (config, decisions, seams, support), so a failure names its layer.
        .testTarget(
            name: "ConnectorTests",
            dependencies: [
                "HuskimoCore", "HuskimoConnectors", "HuskimoTesting", "SandboxKit", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FleetTests",
            dependencies: [
                "HuskimoCore", "HuskimoConnectors", "HuskimoFleet", "HuskimoTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "HuskimoCore", "HuskimoConnectors", "HuskimoFleet", "HuskimoTesting", "SandboxKit",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
