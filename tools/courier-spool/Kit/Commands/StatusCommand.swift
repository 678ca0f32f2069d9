import ArgumentParser
import CourierSpool

struct StatusCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what is pending for whom, since when, and each sender's deduplication state.",
        discussion: """
            Per peer: the stream id, the next sequence number, the sequence number \
            acknowledged up to, pending messages and their size, the age of the oldest \
            pending message, dead letters and quarantined (damaged, moved aside) files. Per \
            sender and stream: processed up to, how many were processed out of order above \
            that, the reservation (messages up to it may have been handed to the \
            application) and the last activity. Also whether a node holds the directory. \
            Takes no lock and never writes: safe while the node runs.

            Examples:
              courier-spool status /var/lib/courier/p
              courier-spool status /var/lib/courier/p --json | jq '.peers[].pending'
            """)

    @OptionGroup var dataDirectory: DataDirectoryArgument

    @Flag(help: "Write JSON instead of tables (sizes in bytes, ages in seconds, stream ids as hexadecimal strings).")
    var json = false

    func execute(in context: ToolContext) throws -> Int32 {
        let path = try dataDirectory.checked()
        let inspector = SpoolInspector(path: path)
        let status = try ToolError.wrap { () throws(SpoolError) in try inspector.status() }
        let report = StatusReport(
            dataDirectory: dataDirectory.path, status: status,
            lock: LockState.probe(dataDirectory: path, recordedPID: status.lockHolderPID), now: context.now()
        )
        context.standardOutput.write(json ? report.json().rendered() + "\n" : report.human())
        return ExitStatus.success
    }
}
