import Courier
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A service that runs a Courier node and exports its swift-metrics to Prometheus: the node,
/// the application's consumer (and sender, with `--send`) and a Hummingbird server answering
/// `GET /metrics` all run in one ServiceGroup, which SIGTERM or SIGINT shuts down gracefully.
@main
enum Exporter {
    static func main() async {
        signal(SIGPIPE, SIG_IGN)   // a closed pipe is reported by the write, not by a signal
        let options: Options
        do {
            guard let parsed = try Options.parse(Array(CommandLine.arguments.dropFirst())) else {
                Output.line(Options.usage)
                exit(0)
            }
            options = parsed
        } catch {
            Output.complain("\(error.message) (see --help)")
            exit(2)
        }

        // Logs on standard error; standard output carries only the lines a script reads.
        let level: Logger.Level = options.verbose ? .info : .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "courier-prometheus-example")

        // Every swift-metrics instrument (Courier's, Hummingbird's, the application's) lands in
        // this registry, which /metrics renders. Bootstrap before the node creates any.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(CourierMetrics.factory(registry: registry))

        var configuration = NodeConfiguration(id: options.id, dataDirectory: options.dataDirectory)
        configuration.listen = options.listen
        configuration.peers = options.peers
        let node: Node
        do {
            node = try await Node.start(configuration)
        } catch {
            Output.complain("cannot start the node: \(error)")
            exit(error.code == .invalidConfiguration ? 2 : 1)
        }
        for endpoint in node.boundEndpoints {
            Output.line("courier: \(endpoint)")
        }

        let router = Router()
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        let httpHost = options.httpHost
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(httpHost, port: options.httpPort),
                serverName: "courier-prometheus-example"
            ),
            onServerRunning: { channel in
                // With --http-port 0 this is where the chosen port becomes known.
                let port = channel.localAddress?.port.map(String.init) ?? "?"
                Output.line("metrics: http://\(httpHost):\(port)/metrics")
            },
            logger: logger
        )

        // Graceful shutdown goes through the services in reverse order: the HTTP server stops
        // first, then the application stops taking messages, and the node drains last (it
        // flushes its spool and waits up to its grace period for outstanding acknowledgements).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: node, serviceName: "courier-node"),
            .init(service: ConsumerService(node: node, logger: logger), serviceName: "consumer"),
        ]
        if let count = options.send, let peer = options.peers.first {
            services.append(.init(
                service: SenderService(node: node, peer: peer.id, count: count, logger: logger),
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "sender"
            ))
        }
        services.append(.init(service: app, serviceName: "metrics-http"))
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger
        )
        // A drain that overruns this is cut short by cancellation (nothing accepted is lost).
        groupConfiguration.maximumGracefulShutdownDuration = node.shutdownGracePeriod + .seconds(3)
        let group = ServiceGroup(configuration: groupConfiguration)

        if let exitAfter = options.exitAfter {
            Task {
                try? await Task.sleep(for: exitAfter)
                await group.triggerGracefulShutdown()
            }
        }
        do {
            try await group.run()
        } catch {
            Output.complain("\(error)")
            exit(1)
        }
        exit(0)
    }
}

/// How Courier's instruments map onto Prometheus types.
enum CourierMetrics {
    /// Buckets for Courier's round-trip timer, `courier_round_trip_seconds` (the sender's
    /// smoothed round trip to each peer: send, delivery, acknowledgement, acknowledgement
    /// back). On loopback it is 50 µs–5 ms, across a LAN a few ms, across a WAN tens of ms to
    /// seconds. swift-prometheus' default timer buckets start at 5 ms, so every loopback and
    /// most LAN round trips would fall into the lowest bucket; these start at 50 µs and go up
    /// roughly 1-2.5-5 per decade to 5 s.
    static let roundTripBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
    ]

    /// Buckets for `courier_spool_records_per_sync` (records made durable by one fsync): 1 when
    /// idle, hundreds under load. The default value buckets start at 5, lumping 1–5 together.
    static let recordsPerSyncBuckets: [Double] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["courier_round_trip_seconds"] = roundTripBuckets
        factory.valueHistogramBuckets["courier_spool_records_per_sync"] = recordsPerSyncBuckets
        return factory
    }
}
