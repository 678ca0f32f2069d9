import ArgumentParser
import CourierSpool
import SystemPackage

struct DumpCommand: ToolCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "List a peer's pending messages: sequence number, times, size, headers and a preview.",
        discussion: """
            Shows the messages appended for PEER and not yet acknowledged, oldest first: \
            sequence number, enqueue time and expiry (ISO 8601, UTC), the attempt count \
            stored with it, its size, its headers (name: value pairs in the message's \
            order, or - when it has none) and the start of its payload (control characters \
            and bytes that are not UTF-8 escaped, as \\n or \\xFF). --json has them in \
            full: headers as an object, name to value ({} for none). --raw writes the \
            payloads alone, one per line, for piping. Takes no lock and never writes.

            Examples:
              courier-spool dump /var/lib/courier/p --peer C --limit 20
              courier-spool dump /var/lib/courier/p --peer C --from 1500 --json
              courier-spool dump /var/lib/courier/p --peer C --raw > pending.txt
            """)

    @OptionGroup var dataDirectory: DataDirectoryArgument

    @Option(help: ArgumentHelp("The peer whose spool to list (its node id). Example: --peer C", valueName: "PEER"))
    var peer: String

    @Option(help: ArgumentHelp("Start at this sequence number. Example: --from 1500", valueName: "SEQ"))
    var from: UInt64 = 0

    @Option(help: ArgumentHelp("List at most N messages. Example: --limit 20", valueName: "N"))
    var limit: Int?

    @Flag(help: "Write JSON: the headers as an object (name to value, {} for none); the payload as a string when it is UTF-8, else base64 under payload_base64.")
    var json = false

    @Flag(help: "Write the payloads alone, each followed by a newline.")
    var raw = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be 1 or more") }
        if json && raw { throw ValidationError("--json and --raw exclude each other") }
    }

    /// Records are read in pages so that a huge spool is not held in memory at once.
    static let pageSize = 65_536

    func execute(in context: ToolContext) throws -> Int32 {
        let path = try dataDirectory.checked()
        let inspector = SpoolInspector(path: path)
        try dataDirectory.checkedPeer(peer, inspector: inspector)
        let status = try ToolError.wrap { () throws(SpoolError) in try inspector.status(peer: peer) }
        var remaining = limit ?? .max
        var next = from
        var records: [InspectedRecord] = []
        var table = Table([
            ("SEQ", .right), ("ENQUEUED", .left), ("EXPIRES", .left), ("ATTEMPT", .right), ("SIZE", .right), ("HEADERS", .left), ("PREVIEW", .left),
        ])
        var listed = 0
        while remaining > 0 {
            let page = try ToolError.wrap { () throws(SpoolError) in
                try inspector.records(peer: peer, from: next, limit: min(remaining, Self.pageSize))
            }
            guard let last = page.last else { break }
            for inspected in page {
                let record = inspected.record
                if raw {
                    guard context.standardOutput.write(record.payload + [UInt8(ascii: "\n")]) else { return ExitStatus.failure }
                } else if json {
                    records.append(inspected)
                } else {
                    table.add([
                        String(record.sequenceNumber), Units.iso8601(nanoseconds: record.enqueuedAt),
                        record.expiresAt.map { Units.iso8601(nanoseconds: $0) } ?? "-", String(record.attempt),
                        Units.bytes(Int64(record.payload.count)), HeaderOutput.preview(record.headers), Preview.of(record.payload),
                    ])
                }
            }
            listed += page.count
            remaining -= page.count
            next = last.record.sequenceNumber + 1
            if page.count < Self.pageSize { break }
        }
        if json {
            let document = JSON.object([
                ("peer", .string(peer)),
                ("stream", status.streamID.map { .string(hex($0)) } ?? .null),
                ("acknowledged_up_to", .unsigned(status.acknowledgedUpTo)),
                ("records", .array(records.map(Self.json))),
            ])
            context.standardOutput.write(document.rendered() + "\n")
        } else if !raw {
            let stream = status.streamID.map(hex) ?? "unknown"
            context.standardOutput.write(
                "Peer \(peer), stream \(stream): \(status.pendingCount) pending above \(status.acknowledgedUpTo); listing \(listed)\n"
            )
            if listed > 0 { context.standardOutput.write(table.rendered()) }
        }
        return ExitStatus.success
    }

    static func json(_ inspected: InspectedRecord) -> JSON {
        let record = inspected.record
        return .object([
            ("seq", .unsigned(record.sequenceNumber)),
            ("enqueued_at", .string(Units.iso8601(nanoseconds: record.enqueuedAt))),
            ("expires_at", record.expiresAt.map { .string(Units.iso8601(nanoseconds: $0)) } ?? .null),
            ("attempt", .unsigned(UInt64(record.attempt))),
            ("flags", .unsigned(UInt64(record.flags))),
            ("size", .int(record.payload.count)),
            ("file", .string(inspected.path.string)),
            ("offset", .int(inspected.offset)),
            HeaderOutput.member(record.headers),
            JSON.payloadMember(record.payload),
        ])
    }
}
