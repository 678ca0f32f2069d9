// swift-tools-version:6.1
// A service that adopts Courier exactly as a user's package does: by path, naming the
// `Courier` product. tools/test builds it (no warnings allowed) and runs it, so a missing
// product, a broken public API or a ServiceGroup that hangs cannot land unnoticed.
// In your own package, use the repository's URL instead of the path:
//   .package(url: "https://github.com/<owner>/courier.git", from: "1.0.0")
import PackageDescription

let package = Package(
    name: "Adopter",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Courier", path: "../.."),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "Adopter",
            dependencies: [
                .product(name: "Courier", package: "Courier"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
