// swift-tools-version:6.1
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Courier",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .executable(name: "zeromq-pingpong", targets: ["ZeroMQPingPong"]),
    ],
    targets: [
        // libzmq, found through pkg-config; Debian ships it as libzmq3-dev.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // The only module that calls libzmq.
        .target(
            name: "ZeroMQ",
            dependencies: ["CZeroMQ"],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "ZeroMQPingPong",
            dependencies: ["ZeroMQ"],
            path: "Examples/ZeroMQPingPong",
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "ZeroMQTests",
            dependencies: ["ZeroMQ"],
            swiftSettings: upcoming
        ),
    ],
    swiftLanguageModes: [.v6]
)
