import Foundation

/// The Markdown tables: every Courier figure beside the baseline's, as a ratio.
enum Report {
    /// "sender + receiver" syncs per second; "–" where a side has none (the baseline).
    private static func syncs(_ scenario: Scenario) -> String {
        guard let sender = scenario.syncsPerSecond else { return "–" }
        return "\(grouped(sender)) + \(scenario.receiverSyncsPerSecond.map { grouped($0) } ?? "–")"
    }

    static func markdown(_ results: Results) -> String {
        var out: [String] = []
        let machine = results.machine
        out.append("Machine: \(machine.cores) cores, \"\(machine.cpu)\", Linux \(machine.kernel); load average \(machine.loadAverageBefore) before, \(results.loadAverageAfter) after.")
        out.append("Phases: saturation \(format(results.saturationSeconds)) s (Courier: \(results.senders) tasks × send(batch: \(results.batch)), in-flight window \(results.window)), latency \(format(results.latencySeconds)) s at half the saturation rate (Courier paced every \(results.pacingTick ?? 200) µs).")
        out.append("")
        out.append("### Throughput at saturation, memory, disk")
        out.append("")
        out.append("| size | system (durability class) | msg/s | × baseline | MB/s | sender peak RSS | receiver peak RSS | disk bytes/msg (sender + receiver) | syncs/s (sender + receiver) |")
        out.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for scenario in results.scenarios where scenario.system != .floor {
            let baseline = baselineFor(scenario, in: results)
            if scenario.system.isProgram {
                out.append("| \(sizeLabel(scenario.size)) | \(scenario.label) | \(grouped(scenario.throughput)) | \(ratio(scenario.throughput, baseline?.throughput)) | \(format(scenario.throughput * Double(scenario.size) / 1e6)) | – | – | – | – |")
                continue
            }
            out.append("| \(sizeLabel(scenario.size)) | \(scenario.label) | \(grouped(scenario.throughput)) | \(ratio(scenario.throughput, baseline?.throughput)) | \(format(scenario.throughput * Double(scenario.size) / 1e6)) | \(mebibytes(scenario.senderPeakResidentBytes)) | \(mebibytes(scenario.receiverPeakResidentBytes)) | \(format(scenario.senderDiskBytesPerMessage, digits: 0)) + \(format(scenario.receiverDiskBytesPerMessage, digits: 0)) | \(syncs(scenario)) |")
        }
        out += targets(results)
        let retransmissions = results.scenarios.compactMap { scenario -> String? in
            guard let saturation = scenario.retransmittedAtSaturation, let latency = scenario.retransmittedAtLatency,
                  saturation + latency > 0 else { return nil }
            return "\(sizeLabel(scenario.size)) \(scenario.label) \(grouped(Double(saturation))) + \(grouped(Double(latency)))"
        }
        if !retransmissions.isEmpty {
            out.append("")
            out.append("Copies the sender sent again, saturation + latency phase (other Courier scenarios: none): " + retransmissions.joined(separator: "; ") + ".")
        }
        out.append("")
        out.append("### Latency at half the saturation rate (coordinated omission corrected), milliseconds")
        out.append("")
        out.append("Baseline: intended send → received (one way). Courier: intended send → outcome `processed` seen by the sender (end to end: spooled, sent, delivered, acknowledged by the application, recorded, acknowledged back); in brackets, intended send → delivered to the receiving application (one way).")
        out.append("")
        out.append("| size | system (durability class) | rate msg/s | p50 | p99 | p99.9 | max | p99 × baseline |")
        out.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for scenario in results.scenarios where !scenario.system.isProgram {
            let baseline = baselineFor(scenario, in: results)
            let l = scenario.latency
            func cell(_ value: Double, _ delivery: Double?) -> String {
                delivery.map { "\(millis(value)) (\(millis($0)))" } ?? millis(value)
            }
            let d = scenario.deliveryLatency
            out.append("| \(sizeLabel(scenario.size)) | \(scenario.label) | \(grouped(scenario.latencyRate)) | \(cell(l.p50, d?.p50)) | \(cell(l.p99, d?.p99)) | \(cell(l.p999, d?.p999)) | \(cell(l.max, d?.max)) | \(ratio(l.p99, baseline?.latency.p99)) |")
        }
        out += floorTargets(results)
        if let spool = results.spool, !spool.isEmpty {
            out.append("")
            out.append("### Spool with 1,000,000 pending records of 100 bytes (spool-bench)")
            out.append("")
            out.append("| cache | pending | reopen time | RSS added by the open spool | RSS added after reading 1,000 records |")
            out.append("| --- | ---: | ---: | ---: | ---: |")
            out += spool
        }
        return out.joined(separator: "\n")
    }

    /// Courier's latency over the floor's at the same rate (SPEC §6: p99 ≤ 1.5×, p50 ≤ 2×).
    private static func floorTargets(_ results: Results) -> [String] {
        var lines: [String] = []
        for floor in results.scenarios where floor.system == .floor {
            guard let group = results.scenarios.first(where: { $0.system == .group && $0.size == floor.size }),
                  floor.latency.p50 > 0, floor.latency.p99 > 0 else { continue }
            let p99 = group.latency.p99 / floor.latency.p99
            let p50 = group.latency.p50 / floor.latency.p50
            lines.append("")
            lines.append("Latency over the floor, \(sizeLabel(floor.size)), \(grouped(floor.latencyRate)) msg/s, same run: group commit p99 \(format(p99, digits: 2))× the floor's (target ≤ 1.50×: \(p99 <= 1.5 ? "met" : "NOT met")), p50 \(format(p50, digits: 2))× (target ≤ 2.00×: \(p50 <= 2 ? "met" : "NOT met")).")
        }
        return lines
    }

    /// The ratios SPEC §6 sets targets for, each measured in this run.
    private static func targets(_ results: Results) -> [String] {
        var lines: [String] = []
        for size in Set(results.scenarios.map(\.size)).sorted() {
            func rate(_ system: BenchSystem) -> Double? {
                results.scenarios.first { $0.system == system && $0.size == size }?.throughput
            }
            var checks: [String] = []
            func check(_ name: String, _ value: Double?, _ base: Double?, _ target: Double) {
                guard let value, let base, base > 0 else { return }
                let ratio = value / base
                checks.append("\(name) \(format(ratio, digits: 2))× (target ≥ \(format(target, digits: 2))×: \(ratio >= target ? "met" : "NOT met"))")
            }
            check("group commit ÷ raw ZeroMQ", rate(.group), rate(.baseline), 0.30)
            check("none ÷ raw ZeroMQ", rate(.none), rate(.baseline), 0.50)
            check("one-task Publisher loop ÷ batched group commit", rate(.pipelined), rate(.group), 0.50)
            check("programs ÷ raw ZeroMQ", rate(.programs), rate(.baseline), 0.30)
            check("half rejected ÷ all processed (library)", rate(.rejecting), rate(.group), 0.50)
            check("half rejected ÷ all processed (programs)", rate(.programsRejecting), rate(.programs), 0.50)
            if !checks.isEmpty {
                lines.append("")
                lines.append("Targets, \(sizeLabel(size)), same run: " + checks.joined(separator: "; ") + ".")
            }
        }
        return lines
    }

    private static func baselineFor(_ scenario: Scenario, in results: Results) -> Scenario? {
        results.scenarios.first { $0.system == .baseline && $0.size == scenario.size }
    }

    static func sizeLabel(_ size: Int) -> String {
        size >= 1024 && size % 1024 == 0 ? "\(size / 1024) KiB" : "\(size) B"
    }

    static func ratio(_ value: Double, _ baseline: Double?) -> String {
        guard let baseline, baseline > 0 else { return "–" }
        return format(value / baseline, digits: 2) + "×"
    }

    static func millis(_ micros: Double) -> String {
        let ms = micros / 1000
        return format(ms, digits: ms < 1 ? 3 : ms < 10 ? 2 : 1)
    }

    static func mebibytes(_ bytes: Int64) -> String {
        format(Double(bytes) / 1_048_576, digits: 1) + " MiB"
    }

    static func format(_ value: Double, digits: Int = 1) -> String {
        String(format: "%.\(digits)f", value)
    }

    static func grouped(_ value: Double) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.maximumFractionDigits = 0
        formatter.groupingSeparator = ","
        return formatter.string(from: NSNumber(value: value.rounded())) ?? "\(Int(value))"
    }
}
