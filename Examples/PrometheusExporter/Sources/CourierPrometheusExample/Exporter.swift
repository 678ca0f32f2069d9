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

        // Every swift-metrics instrument (Courier's and the application's) lands in
        // this registry, which /metrics renders. Bootstrap before the node creates any.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(MetricsSetup.factory(registry: registry))

        var configuration = NodeConfiguration(id: options.id, dataDirectory: options.dataDirectory)
        configuration.listen = options.listen
        configuration.peers = options.peers
        let node: Node
        do {
            node = try await Node.start(configuration)
        } catch {
            Output.complain("cannot start the node: \(options.verbose ? error.description : error.message)")
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
            Output.complain("stopped by an error: \(error)")
            exit(1)
        }
        exit(0)
    }
}

/// How swift-metrics instruments become Prometheus histograms.
enum MetricsSetup {
    /// Buckets for `courier_spool_records_per_sync` (records made durable by one fsync): 1 when
    /// idle, hundreds under load. swift-prometheus' default value buckets start at 5, lumping
    /// 1 to 5 together.
    static let recordsPerSyncBuckets: [Double] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Courier's round-trip timer, `courier_round_trip_seconds`: one sample per measured
        // round trip, 50 µs to seconds. swift-prometheus' default timer buckets start at 5 ms,
        // which would put every loopback and most LAN round trips into the lowest bucket;
        // Courier's own suggestion goes from 50 µs to 5 s in 1-2.5-5 steps.
        factory.durationHistogramBuckets[CourierMetrics.roundTripLabel] = CourierMetrics.roundTripBuckets
        factory.valueHistogramBuckets["courier_spool_records_per_sync"] = recordsPerSyncBuckets
        return factory
    }
}
