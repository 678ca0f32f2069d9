import CourierSpool
import SystemPackage

/// What `courier-spool status` shows: per peer the outbound log, per sender the
/// deduplication state, and whether a node holds the directory.
struct StatusReport {
    var dataDirectory: String
    var status: SpoolStatus
    var lock: LockState
    /// Ages are measured to this time (nanoseconds since the Unix epoch).
    var now: Int64

    func human() -> String {
        var text = "Data directory \(dataDirectory)\n"
        text += "Lock: " + lockText + "\n\n"

        if status.peers.isEmpty {
            text += "Outbound: no peers\n"
        } else {
            text += "Outbound (pending = appended, not yet acknowledged)\n"
            var table = Table([
                ("PEER", .left), ("STREAM", .left), ("NEXT SEQ", .right), ("ACKED UP TO", .right),
                ("PENDING", .right), ("PENDING SIZE", .right), ("OLDEST PENDING", .right),
                ("SPARE FILES", .right), ("DEAD LETTERS", .right), ("QUARANTINED", .right),
            ])
            for peer in status.peers {
                table.add([
                    peer.peer, peer.streamID.map(hex) ?? "unknown", String(peer.nextSequenceNumber),
                    String(peer.acknowledgedUpTo), String(peer.pendingCount), Units.bytes(peer.pendingBytes),
                    peer.oldestPendingEnqueuedAt.map { Units.age(nanoseconds: now - $0) } ?? "-",
                    peer.spareFileCount == 0 ? "0" : "\(peer.spareFileCount) (\(Units.bytes(peer.spareBytes)))",
                    String(peer.deadLetterCount), String(peer.quarantinedFiles.count),
                ])
            }
            text += table.rendered()
            let quarantined = status.peers.flatMap { peer in peer.quarantinedFiles.map { (peer.peer, $0) } }
            for (peer, file) in quarantined {
                text += "  quarantined (peer \(peer)): \(file)\n"
            }
        }
        text += "\n"

        if status.inbound.isEmpty {
            text += "Inbound: no senders\n"
        } else {
            text += "Inbound (deduplication state per sender and stream)\n"
            var table = Table([
                ("SENDER", .left), ("STREAM", .left), ("PROCESSED UP TO", .right), ("OUT OF ORDER", .right),
                ("RESERVED UP TO", .right), ("LAST ACTIVITY", .right),
            ])
            for stream in status.inbound {
                table.add([
                    stream.sender, hex(stream.streamID), String(stream.processedUpTo), String(stream.processedAbove.count),
                    String(stream.reservedUpTo), Units.age(nanoseconds: now - stream.lastActivity) + " ago",
                ])
            }
            text += table.rendered()
        }
        return text
    }

    func json() -> JSON {
        .object([
            ("data_directory", .string(dataDirectory)),
            ("lock", lockJSON),
            ("peers", .array(status.peers.map(peerJSON))),
            ("inbound", .array(status.inbound.map(inboundJSON))),
        ])
    }

    private var lockText: String {
        switch lock {
        case .none: "none (no node has opened this directory)"
        case .held(let pid): "held by pid \(pid.map(String.init) ?? "unknown") (a node is running)"
        case .free(let pid): "free (no node running" + (pid.map { "; last holder pid \($0)" } ?? "") + ")"
        }
    }

    private var lockJSON: JSON {
        switch lock {
        case .none: .object([("held", .bool(false)), ("pid", .null)])
        case .held(let pid): .object([("held", .bool(true)), ("pid", pid.map { .int(Int64($0)) } ?? .null)])
        case .free(let pid): .object([("held", .bool(false)), ("pid", .null), ("last_pid", pid.map { .int(Int64($0)) } ?? .null)])
        }
    }

    private func peerJSON(_ peer: PeerSpoolStatus) -> JSON {
        .object([
            ("peer", .string(peer.peer)),
            ("stream", peer.streamID.map { .string(hex($0)) } ?? .null),
            ("next_seq", .unsigned(peer.nextSequenceNumber)),
            ("acknowledged_up_to", .unsigned(peer.acknowledgedUpTo)),
            ("pending", .int(peer.pendingCount)),
            ("pending_bytes", .int(peer.pendingBytes)),
            ("oldest_pending_enqueued_at", peer.oldestPendingEnqueuedAt.map { .string(Units.iso8601(nanoseconds: $0)) } ?? .null),
            ("oldest_pending_age_seconds", peer.oldestPendingEnqueuedAt.map { .double(Units.seconds(nanoseconds: max(0, now - $0))) } ?? .null),
            ("segments", .int(peer.segmentCount)),
            ("spare_files", .int(peer.spareFileCount)),
            ("spare_bytes", .int(peer.spareBytes)),
            ("dead_letters", .int(peer.deadLetterCount)),
            ("quarantined_files", .array(peer.quarantinedFiles.map { .string($0.string) })),
        ])
    }

    private func inboundJSON(_ stream: InboundStreamState) -> JSON {
        .object([
            ("sender", .string(stream.sender)),
            ("stream", .string(hex(stream.streamID))),
            ("processed_up_to", .unsigned(stream.processedUpTo)),
            ("out_of_order", .int(stream.processedAbove.count)),
            ("reserved_up_to", .unsigned(stream.reservedUpTo)),
            ("reservation_ceiling", .unsigned(stream.reservationCeiling)),
            ("last_activity", .string(Units.iso8601(nanoseconds: stream.lastActivity))),
        ])
    }
}

/// A stream id as `courier-consumer` writes it: lowercase hexadecimal.
func hex(_ value: UInt64) -> String { String(value, radix: 16) }
