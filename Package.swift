// swift-tools-version:6.1
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

#if os(Linux)
let zeroMQPkgConfig: String? = nil
#else
let zeroMQPkgConfig: String? = "libzmq"
#endif

let package = Package(
    name: "Courier",
    // Linux only. No `platforms:` entry claims otherwise: the system shim (CCourierSystem)
    // uses Linux's eventfd, ppoll and prctl, and nothing here is built or tested elsewhere. A
    // port needs a pipe- or kqueue-based WakeEvent and pthread_setname_np on Darwin.
    // The public API: Courier (the reliable node) and ZeroMQ (the safe libzmq binding, useful
    // on its own). CourierSpool is the node's storage and not API: its declarations are
    // `package`, for the node, courier-spool and the tests.
    products: [
        .library(name: "Courier", targets: ["Courier"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .executable(name: "zeromq-pingpong", targets: ["ZeroMQPingPong"]),
        .executable(name: "spool-bench", targets: ["SpoolBench"]),
        .executable(name: "courier-producer", targets: ["CourierProducer"]),
        .executable(name: "courier-consumer", targets: ["CourierConsumer"]),
        .executable(name: "courier-spool", targets: ["CourierSpoolTool"]),
        .executable(name: "courier-bench", targets: ["CourierBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // `swift package generate-documentation --target Courier` (tools/docs builds the site).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
    ],
    targets: [
        // libzmq; Debian ships it as libzmq3-dev. On Linux its header and library are in the
        // default search paths, so pkg-config is not asked: Debian's libzmq.pc pulls in
        // krb5's -isystem flags through Requires.private, which SwiftPM rejects with a
        // warning on every build. Elsewhere (Homebrew) pkg-config finds it.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: zeroMQPkgConfig,
            providers: [.apt(["libzmq3-dev"]), .brew(["zeromq"])]
        ),
        // The only module that calls libzmq.
        .target(
            name: "ZeroMQ",
            dependencies: ["CZeroMQ", "CourierSystem"],
            swiftSettings: upcoming
        ),
        // The reliable node: protocol, acknowledgements, retransmission, delivery.
        .target(
            name: "Courier",
            dependencies: [
                "ZeroMQ", "CourierSpool", "CourierChecksum",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "CourierTests",
            dependencies: [
                "Courier", "CourierSpool", "CourierChecksum", "ZeroMQ", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
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
        // The low-level pieces every other target shares, and nothing else: the one thread
        // type (OSThread), the one wake-up mechanism (WakeEvent) and unbuffered output. No
        // product lists it; it is built into each product that needs it (ZeroMQ among them).
        // Its declarations are `package`, so it adds nothing to any product's public API.
        .target(name: "CCourierSystem"),
        .target(
            name: "CourierSystem",
            dependencies: ["CCourierSystem"],
            swiftSettings: upcoming
        ),
        // CRC-32C, for the wire codec (Courier) and the spool both; `package` declarations.
        // With the CPU's instruction (SSE 4.2 / ARMv8 CRC), checked at run time.
        .target(name: "CCourierCRC"),
        .target(
            name: "CourierChecksum",
            dependencies: ["CCourierCRC"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "CourierSystemTests",
            dependencies: ["CourierSystem", "CourierChecksum"],
            swiftSettings: upcoming
        ),
        // The on-disk spool: outbound logs, dead letters, inbound deduplication state.
        // Depends on no ZeroMQ code.
        .target(
            name: "CourierSpool",
            dependencies: [
                "CourierChecksum", "CourierSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: upcoming
        ),
        // Helpers for every test target: a seeded random generator, free loopback ports, the
        // process-wide test metrics factory.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: upcoming
        ),
        // Helpers both spool test targets use to make and damage data directories.
        .target(
            name: "SpoolTestSupport",
            dependencies: ["CourierSpool", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/SpoolTestSupport",
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "CourierSpoolTests",
            dependencies: [
                "CourierSpool", "SpoolTestSupport", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "SpoolBench",
            dependencies: [
                "CourierSpool",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/SpoolBench",
            swiftSettings: upcoming
        ),
        // courier-bench: raw ZeroMQ DEALER→ROUTER beside Courier end to end, two processes per
        // scenario (it re-executes itself for each role); see docs/PERFORMANCE.md.
        .executableTarget(
            name: "CourierBench",
            dependencies: [
                "Courier", "ZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Benchmarks/CourierBench",
            swiftSettings: upcoming
        ),
        // The example programs (SPEC §5) and what they share: command-line checks, exit
        // codes, unbuffered output, a standard-input reader on its own thread.
        .target(
            name: "CourierExampleSupport",
            dependencies: [
                "Courier", "CourierSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/CourierExampleSupport",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "CourierProducer",
            dependencies: [
                "Courier", "CourierExampleSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/CourierProducer",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "CourierConsumer",
            dependencies: [
                "Courier", "CourierExampleSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/CourierConsumer",
            swiftSettings: upcoming
        ),
        // courier-spool (SPEC §5): inspects, verifies and repairs a data directory. The
        // commands live in CourierSpoolToolKit so that the tests can run them in-process;
        // the executable only hands them the command line and the standard streams.
        .target(
            name: "CourierSpoolToolKit",
            dependencies: [
                "CourierSpool", "ZeroMQ", "CourierSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "tools/courier-spool/Kit",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "CourierSpoolTool",
            dependencies: ["CourierSpoolToolKit"],
            path: "tools/courier-spool/main",
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "CourierSpoolToolTests",
            dependencies: [
                "SpoolTestSupport",
                "CourierSpoolToolKit", "CourierSpool", "ZeroMQ",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: upcoming
        ),
        // The example programs as real processes over loopback; needs them built
        // (`swift build --build-tests` builds them).
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TestSupport", "Courier", "CourierSpool", "CourierChecksum", "ZeroMQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: upcoming
        ),
    ],
    swiftLanguageModes: [.v6]
)
