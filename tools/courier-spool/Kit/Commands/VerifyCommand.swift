import ArgumentParser
import CourierSpool

struct VerifyCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every file and record of a data directory; say where anything is damaged.",
        discussion: """
            Reads every segment, the log's meta file, the dead letters and the inbound \
            journal, and checks every checksum and header. Each problem is printed with its \
            file and byte offset. A partial record at the very end of the newest segment or \
            journal is an append in flight (or the remains of a crash, which the node \
            truncates when it next opens the directory): it is listed, but is not damage. \
            Quarantined files (damage found earlier and moved aside by the node) are listed \
            too; they do not make the spool damaged. Takes no lock and never writes. On a \
            terminal, a large spool shows progress on standard error.

            Exit status: 0 clean, 1 damaged (or unreadable), 2 on a bad command line.

            Examples:
              courier-spool verify /var/lib/courier/p
              courier-spool verify /var/lib/courier/p --json
            """)

    @OptionGroup var dataDirectory: DataDirectoryArgument

    @Flag(help: "Write JSON: {clean, files_checked, records_checked, bytes_checked, problems, incomplete_tails, quarantined_files}.")
    var json = false

    func execute(in context: ToolContext) throws -> Int32 {
        let path = try dataDirectory.checked()
        let inspector = SpoolInspector(path: path)
        let progress = ProgressLine(output: context.standardError, threshold: context.progressThreshold)
        let report = try ToolError.wrap { () throws(SpoolError) in
            try inspector.verify { checked, total in progress.update(checked, of: total) }
        }
        progress.finish()
        let rendering = VerifyReport(dataDirectory: dataDirectory.path, report: report)
        context.standardOutput.write(json ? rendering.json().rendered() + "\n" : rendering.human())
        return report.isClean ? ExitStatus.success : ExitStatus.failure
    }
}

/// A one-line progress display on standard error, drawn only on a terminal and only for
/// work large enough to take a while.
final class ProgressLine {
    private let output: ToolOutput
    private let threshold: Int64
    private var lastPercent = -1
    private var drawn = false

    init(output: ToolOutput, threshold: Int64) {
        self.output = output
        self.threshold = threshold
    }

    func update(_ done: Int64, of total: Int64) {
        guard output.isTerminal, total >= threshold, total > 0 else { return }
        let percent = Int(min(100, done * 100 / total))
        guard percent != lastPercent else { return }
        lastPercent = percent
        drawn = true
        output.write("\r\u{1B}[Kverifying: \(percent)% (\(Units.bytes(done)) of \(Units.bytes(total)))")
    }

    func finish() {
        if drawn { output.write("\r\u{1B}[K") }
    }
}
