import SystemPackage

/// Read-only access to a data directory, safe while a node has it open: takes no lock,
/// never writes, and tolerates segments being appended or deleted underneath it (a file
/// that disappears mid-scan is skipped; a partial record at the end of the newest segment
/// is an append in progress, not corruption). What it reports is the state on disk, which
/// the running node may be a few milliseconds ahead of.
///
/// Its methods read files on the calling thread; they are meant for the `courier-spool`
/// tool and tests, not for a task on the cooperative pool.
package struct SpoolInspector: Sendable {
    /// The data directory.
    package let path: FilePath
    /// The largest record accepted as plausible; match the node's ``SpoolConfiguration/maxRecordSize``.
    package var maxRecordSize: Int

    /// Creates an inspector for the data directory at `path`.
    package init(path: FilePath, maxRecordSize: Int = 16 << 20) {
        self.path = path
        self.maxRecordSize = maxRecordSize
    }

    var outbound: FilePath { path.appending("outbound") }

    /// The peers with an outbound log.
    package func peers() throws(SpoolError) -> [String] {
        try DataDirectory.peers(in: outbound).sorted()
    }

    /// The status of every peer's log and of the inbound state.
    package func status() throws(SpoolError) -> SpoolStatus {
        var peers: [PeerSpoolStatus] = []
        for peer in try self.peers() {
            if let status = try? status(peer: peer) { peers.append(status) }
        }
        var holder: Int32?
        if let fd = try FileOps.openForReading(path.appending("LOCK")) {
            holder = (try? fd.readBytes(at: 0, count: 32)).flatMap { Int32(String(decoding: $0, as: UTF8.self).trimmingCharacters()) }
            try? fd.close()
        }
        return SpoolStatus(peers: peers, inbound: try inboundStreams(), lockHolderPID: holder)
    }

    /// The status of one peer's log.
    package func status(peer: String) throws(SpoolError) -> PeerSpoolStatus {
        let directory = outbound.appending(PeerDirectoryName.encode(peer))
        guard FileOps.isDirectory(directory) else {
            throw SpoolError(code: .notFound, message: "no outbound log for peer \(peer)", path: directory)
        }
        let meta = try readMeta(directory)
        let acknowledged = meta?.acknowledgedUpTo ?? 0
        var status = PeerSpoolStatus(
            peer: peer, directory: directory, streamID: meta?.streamID, nextSequenceNumber: acknowledged + 1,
            acknowledgedUpTo: acknowledged, pendingCount: 0, pendingBytes: 0, oldestPendingEnqueuedAt: nil,
            segmentCount: 0, deadLetterCount: 0, quarantinedFiles: try quarantined(directory)
        )
        _ = try scanSegments(directory, streamID: meta?.streamID) { header, _, bytes in
            status.nextSequenceNumber = max(status.nextSequenceNumber, header.sequenceNumber + 1)
            if header.sequenceNumber > acknowledged {
                status.pendingCount += 1
                status.pendingBytes += Int64(bytes)
                if status.oldestPendingEnqueuedAt == nil { status.oldestPendingEnqueuedAt = header.enqueuedAt }
            }
        } segment: { base, _ in
            // An empty newest segment starts at the next number (after a recovery jump).
            status.nextSequenceNumber = max(status.nextSequenceNumber, base)
            status.segmentCount += 1
        }
        status.deadLetterCount = try deadLetters(peer: peer).count
        for name in try FileOps.list(directory) where SparePool.isSpare(fileName: name) {
            status.spareFileCount += 1
            status.spareBytes += fileSize(directory.appending(name))
        }
        return status
    }

    /// Records of one peer's log from `sequenceNumber` on, at most `limit`, in order.
    package func records(peer: String, from sequenceNumber: UInt64 = 0, limit: Int = .max, includeAcknowledged: Bool = false) throws(SpoolError) -> [InspectedRecord] {
        let directory = outbound.appending(PeerDirectoryName.encode(peer))
        let meta = try readMeta(directory)
        let acknowledged = meta?.acknowledgedUpTo ?? 0
        var records: [InspectedRecord] = []
        _ = try scanSegments(directory, streamID: meta?.streamID, keepBodies: true) { header, location, body in
            guard records.count < limit, header.sequenceNumber >= sequenceNumber,
                  includeAcknowledged || header.sequenceNumber > acknowledged else { return }
            // A body whose header block does not read is shown whole, as its payload, with
            // no headers (`verify` reports the record).
            let parts = location.body.withUnsafeBytes { try? MessageBody.split($0, flags: header.flags).get() }
            let record = SpoolRecord(
                sequenceNumber: header.sequenceNumber, enqueuedAt: header.enqueuedAt,
                expiresAt: header.expiresAt == 0 ? nil : header.expiresAt, attempt: header.attempt, flags: header.flags,
                headers: parts?.headers ?? [], payload: parts?.payload ?? location.body
            )
            records.append(InspectedRecord(record: record, acknowledged: header.sequenceNumber <= acknowledged, path: location.path, offset: location.offset))
            _ = body
        } segment: { _, _ in }
        return records
    }

    /// The dead letters of one peer, oldest first.
    package func deadLetters(peer: String) throws(SpoolError) -> [DeadLetter] {
        let file = outbound.appending(PeerDirectoryName.encode(peer)).appending("deadletters.log")
        guard let bytes = try readWhole(file) else { return [] }
        let scan = RecordFile.scanRecords(bytes, kind: .deadLetters, maxRecordSize: Int(Int32.max), tolerateTornTail: true)
        var live: [UInt64: DeadLetter] = [:]
        for entry in scan.entries {
            switch entry.header.type {
            case RecordFormat.RecordType.deadLetter.rawValue:
                live[entry.header.sequenceNumber] = DeadLetter.decode(header: entry.header, body: entry.body)
            case RecordFormat.RecordType.deadLetterRemoval.rawValue:
                live[entry.header.sequenceNumber] = nil
            default: break
            }
        }
        return live.values.sorted { $0.id < $1.id }
    }

    /// Every inbound stream's state as last written.
    package func inboundStreams() throws(SpoolError) -> [InboundStreamState] {
        guard let bytes = try readWhole(path.appending("inbound").appending("inbound.journal")) else { return [] }
        let scan = RecordFile.scanRecords(bytes, kind: .inbound, maxRecordSize: 1 << 26, tolerateTornTail: true)
        var streams: [InboundStreamKey: InboundStreamState] = [:]
        for entry in scan.entries where entry.header.type == RecordFormat.RecordType.inboundState.rawValue {
            if let stream = InboundStreamState.decode(body: entry.body, lastActivity: entry.header.enqueuedAt) {
                streams[InboundStreamKey(sender: stream.sender, streamID: stream.streamID)] = stream
            }
        }
        return streams.values.sorted { ($0.sender, $0.streamID) < ($1.sender, $1.streamID) }
    }

    /// Verifies every checksum of every file; reports each problem with its file and byte
    /// offset. `progress` is called with (bytes checked, total bytes) after each file.
    package func verify(progress: ((Int64, Int64) -> Void)? = nil) throws(SpoolError) -> SpoolVerifyReport {
        var report = SpoolVerifyReport(problems: [], incompleteTails: [], quarantinedFiles: [], filesChecked: 0, recordsChecked: 0, bytesChecked: 0)
        var total: Int64 = 0
        let peers = try self.peers()
        for peer in peers {
            let directory = outbound.appending(PeerDirectoryName.encode(peer))
            for name in try FileOps.list(directory) { total += fileSize(directory.appending(name)) }
        }
        for peer in peers {
            let directory = outbound.appending(PeerDirectoryName.encode(peer))
            report.quarantinedFiles += try quarantined(directory)
            let metaPath = directory.appending("log.meta")
            var streamID: UInt64?
            if let bytes = try readWhole(metaPath) {
                report.filesChecked += 1
                let (meta, damaged) = LogMeta.read(from: bytes)
                streamID = meta?.streamID
                if meta == nil {
                    report.problems.append(SpoolProblem(path: metaPath, offset: 0, reason: "both slots of the meta file are damaged"))
                } else if damaged > 0 && bytes.count >= 2 * LogMeta.slotSize && !bytes[LogMeta.slotSize...].allSatisfy({ $0 == 0 }) && !bytes[..<LogMeta.slotSize].allSatisfy({ $0 == 0 }) {
                    report.problems.append(SpoolProblem(path: metaPath, offset: 0, reason: "one slot of the meta file is damaged (the other is good)"))
                }
            }
            let outcome = try scanSegments(directory, streamID: streamID) { _, _, _ in report.recordsChecked += 1 } segment: { _, size in
                report.filesChecked += 1
                report.bytesChecked += size
                progress?(report.bytesChecked, total)
            }
            report.problems += outcome.problems
            report.incompleteTails += outcome.tails
            let deadLetters = directory.appending("deadletters.log")
            if let bytes = try readWhole(deadLetters) {
                check(bytes, kind: .deadLetters, path: deadLetters, into: &report)
            }
            // Attempt counts are advisory (docs/SPOOL-FORMAT.md, "attempts.log"): read and
            // counted, but a torn or damaged snapshot is no damage to the spool (the node
            // takes the last one that verifies, or none).
            if let bytes = try readWhole(directory.appending(AttemptFile.fileName)) {
                report.filesChecked += 1
                report.bytesChecked += Int64(bytes.count)
                report.recordsChecked += SentAttempts.scan(bytes, streamID: nil).records
            }
        }
        let inbound = path.appending("inbound")
        report.quarantinedFiles += try quarantined(inbound)
        if let bytes = try readWhole(inbound.appending("inbound.journal")) {
            check(bytes, kind: .inbound, path: inbound.appending("inbound.journal"), into: &report)
        }
        progress?(report.bytesChecked, max(total, report.bytesChecked))
        return report
    }

    // MARK: Helpers

    private func check(_ bytes: [UInt8], kind: FileHeader.Kind, path: FilePath, into report: inout SpoolVerifyReport) {
        report.filesChecked += 1
        report.bytesChecked += Int64(bytes.count)
        let scan = RecordFile.scanRecords(bytes, kind: kind, maxRecordSize: Int(Int32.max), tolerateTornTail: true)
        report.recordsChecked += scan.entries.count
        // A damaged range an earlier open already quarantined stays in the file, skipped;
        // only ranges not yet set aside are problems (as for segments).
        for range in scan.damaged
        where !Quarantine.holds(Quarantine.path(for: path, offset: range.offset), exactly: bytes[Int(range.offset)..<Int(range.end)]) {
            report.problems.append(SpoolProblem(path: path, offset: range.offset, reason: "\(range.reason) (the records after it are intact)", length: range.length))
        }
        if let failure = scan.failure {
            let problem = SpoolProblem(path: path, offset: failure.offset, reason: failure.reason, length: (failure.end ?? Int64(bytes.count)) - failure.offset)
            if failure.kind == .tornTail { report.incompleteTails.append(problem) } else { report.problems.append(problem) }
        }
    }

    private struct Location {
        var path: FilePath
        var offset: Int64
        var body: [UInt8]
    }

    private struct SegmentsOutcome {
        var problems: [SpoolProblem] = []
        var tails: [SpoolProblem] = []
    }

    /// Scans a peer's segments in order, skipping any that vanish.
    private func scanSegments(
        _ directory: FilePath, streamID: UInt64?, keepBodies: Bool = false,
        record: (RecordFormat.Header, Location, Int) -> Void,
        segment: (_ base: UInt64, _ fileSize: Int64) -> Void
    ) throws(SpoolError) -> SegmentsOutcome {
        var outcome = SegmentsOutcome()
        let bases = try FileOps.list(directory).compactMap(Segment.baseSequence(fromFileName:)).sorted()
        for (position, base) in bases.enumerated() {
            let path = directory.appending(Segment.fileName(baseSequence: base))
            guard let fd = try FileOps.openForReading(path) else { continue }  // deleted meanwhile
            defer { try? fd.close() }
            let isLast = position == bases.count - 1
            let scanner = RecordScanner(maxRecordSize: maxRecordSize, expectedStreamID: streamID, expectedBase: base, isLast: isLast, collectOffsets: false)
            var result: RecordScanner.Result
            do {
                result = try scanner.scan(fd) { header, offset, raw in
                    let body = keepBodies ? RecordFormat.body(raw, at: 0, length: header.length) : []
                    record(header, Location(path: path, offset: offset, body: body), header.length)
                }
                // Damaged ranges an earlier open already copied to quarantine/ (byte for byte)
                // are known: the node skips them; the quarantined file is listed.
                result.damaged.removeAll { Quarantine.holds(Quarantine.path(for: path, offset: $0.offset), sameBytesAs: fd, at: $0.offset, length: $0.length) }
                if isLast, result.failure?.kind == .corrupt || !result.damaged.isEmpty {
                    // A reader may catch the node's write half done. Look again: damage that
                    // is still there at the same offset is real; anything else was in flight.
                    let second = try scanner.scan(fd)
                    if let failure = result.failure, failure.kind == .corrupt,
                       second.failure?.kind != .corrupt || second.failure?.offset != failure.offset {
                        result.failure = RecordScanner.Failure(kind: .tornTail, offset: failure.offset, reason: "record being written")
                    }
                    result.damaged.removeAll { !second.damaged.contains($0) }
                }
            } catch {
                throw SpoolError.system("pread", error, path: path, doing: "reading the segment")
            }
            segment(base, result.fileSize)
            for range in result.damaged {
                outcome.problems.append(SpoolProblem(path: path, offset: range.offset, reason: range.summary, length: range.length))
            }
            if let failure = result.failure {
                let problem = SpoolProblem(path: path, offset: failure.offset, reason: failure.reason, length: (failure.end ?? result.fileSize) - failure.offset)
                if failure.kind == .tornTail { outcome.tails.append(problem) } else { outcome.problems.append(problem) }
            }
        }
        return outcome
    }

    private func readMeta(_ directory: FilePath) throws(SpoolError) -> LogMeta? {
        guard let bytes = try readWhole(directory.appending("log.meta")) else { return nil }
        return LogMeta.read(from: bytes).meta
    }

    private func quarantined(_ directory: FilePath) throws(SpoolError) -> [FilePath] {
        let folder = directory.appending("quarantine")
        return try FileOps.list(folder).sorted().map { folder.appending($0) }
    }

    private func readWhole(_ path: FilePath) throws(SpoolError) -> [UInt8]? {
        guard let fd = try FileOps.openForReading(path) else { return nil }
        defer { try? fd.close() }
        do {
            let size = try fd.fileSize()
            return try fd.readBytes(at: 0, count: Int(size))
        } catch {
            throw SpoolError.system("pread", error, path: path, doing: "reading")
        }
    }

    private func fileSize(_ path: FilePath) -> Int64 {
        guard let fd = try? FileOps.openForReading(path) else { return 0 }
        defer { try? fd.close() }
        return (try? fd.fileSize()) ?? 0
    }
}
