// swift-tools-version:6.1
//
// An example service: Courier's swift-metrics exported through swift-prometheus and served
// on /metrics by Hummingbird, with the node and the HTTP server in one ServiceGroup.
// A package of its own, so that Courier itself depends on none of this.
import PackageDescription

let package = Package(
    name: "PrometheusExporter",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "courier-prometheus-example", targets: ["CourierPrometheusExample"]),
    ],
    dependencies: [
        // Courier: the repository this folder is in. A path dependency's identity is the last
        // component of its path (the clone's directory name: "main", "courier", whatever CI
        // checked out), so `name:` gives it the fixed name the product reference below uses.
        .package(name: "Courier", path: "../.."),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // No default traits: they add swift-configuration support and full Foundation, which
        // this example does not use.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Already a dependency of Hummingbird; named here because the example asks the
        // server's channel for its port (NIOCore), and imports what it uses.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
    ],
    targets: [
        .executableTarget(
            name: "CourierPrometheusExample",
            dependencies: [
                .product(name: "Courier", package: "Courier"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
