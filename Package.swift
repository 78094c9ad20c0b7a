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
    ],
    targets: [
        // C libraries of the design, each behind a module map and a header of `static inline` shims.
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CIsal", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),

        .target(
            name: "Shared",
            dependencies: [
                "CRabbitMQ", "CCurl", "CLibPQ", "CZlib", "CCrypto", "CIsal",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Planner",
            dependencies: [
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Worker",
            dependencies: [
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The sandbox API that stands in for Twilio and Singular in tests, the demo and benchmarks.
        .target(name: "SandboxKit", dependencies: ["Shared"], swiftSettings: swiftSettings),
        .executableTarget(name: "Sandbox", dependencies: ["SandboxKit"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SharedTests",
            dependencies: ["Shared"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Shared", "SandboxKit", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
    ]
)
