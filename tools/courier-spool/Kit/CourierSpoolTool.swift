import ArgumentParser

/// The `courier-spool` program: parses a command line, runs the subcommand, and says how
/// the process should exit (SPEC §5: 0 success, 1 failure or damage, 2 usage error).
public enum CourierSpoolTool {
    static let name = "courier-spool"

    /// Runs one command line (without the program name) and returns the exit code. A usage
    /// error is one line on standard error and exit code 2, never ArgumentParser's 64.
    public static func main(arguments: [String], context: ToolContext) -> Int32 {
        var parsed: any ParsableCommand
        do {
            parsed = try RootCommand.parseAsRoot(arguments)
            if parsed is RootCommand {
                complain(context, "a command is needed: status, dump, verify, dead-letters, requeue or keygen (see --help)")
                return ExitStatus.usage
            }
            if !(parsed is any ToolCommand) {
                try parsed.run()  // `help` and `--help`: throws the request for the help screen
            }
        } catch {
            if RootCommand.exitCode(for: error) == .success {
                context.standardOutput.write(RootCommand.fullMessage(for: error) + "\n")
                return ExitStatus.success
            }
            let message = RootCommand.message(for: error)
                .split(whereSeparator: \.isNewline).first.map(String.init) ?? "invalid command line"
            complain(context, "\(message) (see --help)")
            return ExitStatus.usage
        }
        guard let command = parsed as? any ToolCommand else { return ExitStatus.success }
        do {
            return try command.execute(in: context)
        } catch let error as ToolError {
            complain(context, error.message)
            return error.status
        } catch {
            complain(context, "\(error)")
            return ExitStatus.failure
        }
    }

    static func complain(_ context: ToolContext, _ message: String) {
        context.standardError.write("\(name): \(message)\n")
    }
}

/// A subcommand: runs with the context it is given and returns the exit code.
protocol ToolCommand: ParsableCommand {
    func execute(in context: ToolContext) throws -> Int32
}

/// A failure that ends a command with one line on standard error.
struct ToolError: Error, CustomStringConvertible {
    var message: String
    var status: Int32

    /// A bad argument (a missing data directory, an unknown peer): exit code 2.
    static func usage(_ message: String) -> ToolError { ToolError(message: message, status: ExitStatus.usage) }
    /// Something that went wrong while running: exit code 1.
    static func failure(_ message: String) -> ToolError { ToolError(message: message, status: ExitStatus.failure) }

    var description: String { message }
}

struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: CourierSpoolTool.name,
        abstract: "Inspect, verify and repair a Courier node's data directory.",
        discussion: """
            The read-only commands (status, dump, verify, dead-letters) take no lock and \
            never write, so they are safe while a node runs on the directory; what they show \
            is the state on disk, which a running node may be a few milliseconds ahead of. \
            requeue changes the spool and needs the node stopped. Every listing has --json.

            Exit status: 0 on success, 1 on a failure (verify: damage found), 2 on a bad \
            command line.

            Examples:
              courier-spool status /var/lib/courier/p
              courier-spool dump /var/lib/courier/p --peer C --limit 20
              courier-spool verify /var/lib/courier/p
              courier-spool dead-letters /var/lib/courier/p --peer C --json
              courier-spool requeue /var/lib/courier/p --peer C --all
              courier-spool keygen --out /etc/courier/node.key
            """,
        subcommands: [
            StatusCommand.self, DumpCommand.self, VerifyCommand.self,
            DeadLettersCommand.self, RequeueCommand.self, KeygenCommand.self,
        ]
    )
}
