// swift-tools-version:6.1
// CourierTracing: the trace context of swift-distributed-tracing in Courier's message headers.
// A package of its own, so that Courier itself depends on no tracing library; tools/test
// builds it (no warnings in its own sources) and runs its tests. In your package:
//   .package(url: "https://github.com/<owner>/courier.git", from: "1.0.0") for Courier, and
//   this package by path or from its own repository once published.
import PackageDescription

let package = Package(
    name: "CourierTracing",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CourierTracing", targets: ["CourierTracing"]),
    ],
    dependencies: [
        .package(name: "Courier", path: "../.."),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
    ],
    targets: [
        .target(
            name: "CourierTracing",
            dependencies: [
                .product(name: "Courier", package: "Courier"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            path: "Sources/CourierTracing"
        ),
        .testTarget(
            name: "CourierTracingTests",
            dependencies: [
                "CourierTracing",
                .product(name: "Courier", package: "Courier"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            path: "Tests/CourierTracingTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
