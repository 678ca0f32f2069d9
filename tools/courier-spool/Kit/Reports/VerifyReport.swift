import CourierSpool
import SystemPackage

/// What `courier-spool verify` prints.
struct VerifyReport {
    var dataDirectory: String
    var report: SpoolVerifyReport

    func human() -> String {
        var text = "Verified \(dataDirectory): \(Units.grouped(report.filesChecked)) files, "
            + "\(Units.grouped(report.recordsChecked)) records, \(Units.bytes(report.bytesChecked))\n"
        for problem in report.problems {
            text += "DAMAGED      \(problem.path) at byte \(problem.offset): \(problem.reason)\n"
        }
        for tail in report.incompleteTails {
            text += "INCOMPLETE   \(tail.path) at byte \(tail.offset): \(tail.reason) "
                + "(an append in flight, or crash remains the node truncates on its next start)\n"
        }
        for file in report.quarantinedFiles {
            text += "QUARANTINED  \(file) (damage found earlier and moved aside; its records are lost)\n"
        }
        if report.isClean {
            text += "Result: clean\n"
        } else {
            let count = report.problems.count
            text += "Result: DAMAGED (\(count) problem\(count == 1 ? "" : "s")); the node quarantines damaged "
                + "regions when it next opens the directory and never delivers them\n"
        }
        return text
    }

    func json() -> JSON {
        func problem(_ problem: SpoolProblem) -> JSON {
            .object([("file", .string(problem.path.string)), ("offset", .int(problem.offset)), ("reason", .string(problem.reason))])
        }
        return .object([
            ("data_directory", .string(dataDirectory)),
            ("clean", .bool(report.isClean)),
            ("files_checked", .int(report.filesChecked)),
            ("records_checked", .int(report.recordsChecked)),
            ("bytes_checked", .int(report.bytesChecked)),
            ("problems", .array(report.problems.map(problem))),
            ("incomplete_tails", .array(report.incompleteTails.map(problem))),
            ("quarantined_files", .array(report.quarantinedFiles.map { .string($0.string) })),
        ])
    }
}
