import CoreMetrics
import Logging
import SystemPackage

/// Opens an outbound log's directory and brings it to a consistent state: verifies every
/// record, truncates a torn tail, quarantines damage, deletes fully acknowledged segments,
/// and settles the next sequence number (see docs/SPOOL-FORMAT.md, "Recovery").
struct LogRecovery {
    struct Recovered {
        var metaFile: LogMetaFile
        var segments: [SegmentIndex]
        var nextSequence: UInt64
        var events: [SpoolEvent]
    }

    let directory: FilePath
    let peer: String
    let configuration: SpoolConfiguration
    let metrics: SpoolMetrics

    var logger: Logger { configuration.logger }
    var quarantineDirectory: FilePath { directory.appending(Quarantine.directoryName) }
    var metaPath: FilePath { directory.appending("log.meta") }

    func recover() throws(SpoolError) -> Recovered {
        try FileOps.makeDirectory(directory)
        var events: [SpoolEvent] = []
        let bases = try FileOps.list(directory).compactMap(Segment.baseSequence(fromFileName:)).sorted()

        // 1. The meta file: stream id, acknowledged mark, sequence reservation.
        var meta: LogMeta?
        var metaExists = false
        if let fd = try FileOps.openForReading(metaPath) {
            metaExists = true
            let bytes: [UInt8]
            do { bytes = try fd.readBytes(at: 0, count: 2 * LogMeta.slotSize) } catch {
                try? fd.close()
                throw SpoolError.system("pread", error, path: metaPath, doing: "reading the log's meta file")
            }
            try? fd.close()
            meta = LogMeta.read(from: bytes).meta
            if meta == nil {
                let report = CorruptionReport(peer: peer, path: metaPath, offset: 0, reason: "both slots of the meta file are damaged; stream id and acknowledged mark rebuilt from the segments", quarantinedTo: nil)
                events.append(.corruptionFound(report))
            }
        }

        // 2. The segments, oldest first.
        var segments: [SegmentIndex] = []
        var newestDamaged = false
        var streamID = meta?.streamID
        for (position, base) in bases.enumerated() {
            let isLast = position == bases.count - 1
            let path = directory.appending(Segment.fileName(baseSequence: base))
            let fd = try FileOps.openForWriting(path, create: false)
            let scanner = RecordScanner(maxRecordSize: configuration.maxRecordSize, expectedStreamID: streamID, expectedBase: base, isLast: isLast)
            let result: RecordScanner.Result
            do { result = try scanner.scan(fd) } catch {
                try? fd.close()
                throw SpoolError.system("pread", error, path: path, doing: "scanning the segment")
            }
            if streamID == nil, let header = result.header { streamID = header.streamID }
            // Damaged ranges with valid records after them: copied aside, left in place, and
            // skipped by the index built from the runs below.
            for range in result.damaged {
                try quarantine(fd, path: path, range: range, events: &events)
            }
            if let failure = result.failure {
                switch failure.kind {
                case .tornTail:
                    let cut = result.fileSize - failure.offset
                    if failure.offset == 0 {
                        try? fd.close()
                        try FileOps.unlinkFile(path)
                        try FileOps.syncDirectory(directory)
                        logger.notice("spool: removed a segment whose header a crash cut short", metadata: ["peer": "\(peer)", "file": "\(path)"])
                        events.append(.tornTailTruncated(path: path, offset: 0, bytes: cut))
                        continue
                    }
                    try truncate(fd, to: failure.offset, path: path)
                    logger.notice("spool: truncated a torn tail (a write cut short by a crash)", metadata: [
                        "peer": "\(peer)", "file": "\(path)", "offset": "\(failure.offset)", "bytes": "\(cut)",
                    ])
                    events.append(.tornTailTruncated(path: path, offset: failure.offset, bytes: cut))
                case .corrupt:
                    if isLast { newestDamaged = true }
                    let damageEnd = failure.end ?? result.fileSize
                    let moved = try quarantine(fd, path: path, from: failure.offset, fileSize: damageEnd)
                    let report = CorruptionReport(peer: peer, path: path, offset: failure.offset, reason: failure.reason, quarantinedTo: moved, length: damageEnd - failure.offset)
                    metrics.corruptions.increment()
                    logger.error("spool: corruption found; the damaged part was quarantined and is never read again", metadata: [
                        "peer": "\(peer)", "file": "\(path)", "offset": "\(failure.offset)", "reason": "\(failure.reason)", "quarantinedTo": "\(moved)",
                    ])
                    events.append(.corruptionFound(report))
                    if failure.offset == 0 { continue }  // the whole file was moved aside
                }
            }
            let segment = Segment(baseSequence: base, path: path, fd: fd, version: result.header?.version ?? 1)
            for run in result.runs {
                segments.append(SegmentIndex(segment: segment, baseSequence: run.baseSequence, offsets: run.offsets, end: run.end))
            }
        }

        // 3. The meta file again: create it for a new stream, or rebuild a damaged one.
        let metaFile: LogMetaFile
        if let meta {
            metaFile = try LogMetaFile.open(at: metaPath, meta: meta)
        } else if !metaExists && segments.isEmpty && bases.isEmpty {
            metaFile = try LogMetaFile.create(at: metaPath, streamID: UInt64.random(in: 1...UInt64.max))
            logger.info("spool: created a new stream", metadata: ["peer": "\(peer)", "stream": "\(hex(metaFile.current.streamID))"])
        } else {
            // Damaged or missing with segments present: keep the stream id the segments
            // carry, treat everything before the oldest segment as acknowledged.
            let rebuiltStream = streamID ?? UInt64.random(in: 1...UInt64.max)
            let acknowledged = (segments.first?.segment.baseSequence ?? 1) - 1
            if !metaExists {
                let report = CorruptionReport(peer: peer, path: metaPath, offset: 0, reason: "meta file missing beside existing segments; rebuilt from the segments", quarantinedTo: nil)
                events.append(.corruptionFound(report))
            }
            metrics.corruptions.increment()
            logger.error("spool: the log's meta file was missing or damaged; rebuilt from the segments", metadata: ["peer": "\(peer)", "file": "\(metaPath)"])
            let fresh = try LogMetaFile.create(at: metaPath, streamID: rebuiltStream)
            try fresh.write(acknowledgedUpTo: acknowledged, reservedUpTo: 0, sync: true)
            metaFile = fresh
            newestDamaged = true
        }

        // 4. The next sequence number: above every number ever handed out.
        var highest = metaFile.current.acknowledgedUpTo
        for index in segments { highest = max(highest, index.lastSequence) }
        if let lastBase = bases.last { highest = max(highest, lastBase - 1) }
        if bases.isEmpty && metaFile.current.reservedUpTo > 0 {
            // Records were appended once, yet no segment is left (the newest is never
            // deleted): files were lost, so trust only the reservation.
            newestDamaged = true
            logger.error("spool: every segment file is missing although records were appended; continuing above the reserved sequence numbers", metadata: ["peer": "\(peer)"])
        }
        if newestDamaged {
            // Records after the damage may have been handed out: skip past the reservation.
            highest = max(highest, metaFile.current.reservedUpTo)
        }
        let nextSequence = highest + 1
        if newestDamaged, (segments.last?.lastSequence ?? 0) + 1 < nextSequence, !bases.contains(nextSequence) {
            // Make the jump durable before anything can be handed out above it: an empty
            // segment whose base is the next number. The next open finds no damage (it was
            // quarantined) and would otherwise continue right after the last record, reusing
            // numbers the node may already have sent tombstones for; every segment's base − 1
            // counts instead. (The writer would start this segment at its first append anyway.)
            let segment = try Segment.create(in: directory, streamID: metaFile.current.streamID, baseSequence: nextSequence, sync: true)
            segments.append(SegmentIndex(segment: segment, offsets: [], end: Int64(FileHeader.size)))
            logger.notice("spool: sequence numbers continue above everything that may have been handed out; started a segment there", metadata: [
                "peer": "\(peer)", "next": "\(nextSequence)", "file": "\(segment.path)",
            ])
        }

        // 5. Segments wholly acknowledged (except the newest) are garbage. A file with a
        // quarantined range has several runs; it goes when its last run does.
        let acknowledged = metaFile.current.acknowledgedUpTo
        var dropped: [SegmentIndex] = []
        while segments.count > 1, segments[0].lastSequence <= acknowledged {
            dropped.append(segments.removeFirst())
        }
        let doomed = SegmentIndex.filesToDelete(dropped, keeping: segments.first)
        for segment in doomed { try FileOps.unlinkFile(segment.path) }
        if !doomed.isEmpty { try FileOps.syncDirectory(directory) }

        return Recovered(metaFile: metaFile, segments: segments, nextSequence: nextSequence, events: events)
    }

    private func truncate(_ fd: FileDescriptor, to offset: Int64, path: FilePath) throws(SpoolError) {
        do {
            try fd.resize(to: offset)
            try fd.datasync()
        } catch {
            throw SpoolError.from(error, call: "ftruncate", path: path, doing: "truncating the segment during recovery")
        }
    }

    /// Copies a damaged range followed by valid records into `quarantine/` (synced, directory
    /// synced) and reports it, unless an earlier open already did: then the quarantine file
    /// holds exactly these bytes and the range is only skipped again. The segment itself is
    /// not changed.
    private func quarantine(_ fd: FileDescriptor, path: FilePath, range: RecordScanner.DamagedRange, events: inout [SpoolEvent]) throws(SpoolError) {
        let target = Quarantine.path(for: path, offset: range.offset)
        if Quarantine.holds(target, sameBytesAs: fd, at: range.offset, length: range.length) {
            logger.info("spool: skipping a damaged range quarantined at an earlier open", metadata: [
                "peer": "\(peer)", "file": "\(path)", "offset": "\(range.offset)", "bytes": "\(range.length)",
                "missing": "\(range.missingNumbers)", "quarantinedTo": "\(target)",
            ])
            return
        }
        try FileOps.makeDirectory(quarantineDirectory)
        let out = try FileOps.openForWriting(target, create: true)
        defer { try? out.close() }
        do {
            try out.resize(to: 0)
            var position = range.offset
            while position < range.end {
                let chunk = try fd.readBytes(at: position, count: min(1 << 20, (range.end - position).clamped))
                if chunk.isEmpty { break }
                _ = try out.writeAll(toAbsoluteOffset: position - range.offset, chunk)
                position += Int64(chunk.count)
            }
            try out.datasync()
        } catch {
            throw SpoolError.from(error, call: "write", path: target, doing: "copying damaged bytes to quarantine")
        }
        try FileOps.syncDirectory(quarantineDirectory)
        let report = CorruptionReport(peer: peer, path: path, offset: range.offset, reason: range.summary, quarantinedTo: target, length: range.length)
        metrics.corruptions.increment()
        logger.error("spool: corruption found; the damaged records were quarantined and are never read, the records after them are kept", metadata: [
            "peer": "\(peer)", "file": "\(path)", "offset": "\(range.offset)", "bytes": "\(range.length)",
            "missing": "\(range.missingNumbers)", "reason": "\(range.reason)", "quarantinedTo": "\(target)",
        ])
        events.append(.corruptionFound(report))
    }

    /// Moves `[from, end)` of a damaged segment into `quarantine/`: a whole file by rename,
    /// a tail by copy, datasync, directory sync and truncation of the original.
    private func quarantine(_ fd: FileDescriptor, path: FilePath, from offset: Int64, fileSize: Int64) throws(SpoolError) -> FilePath {
        try FileOps.makeDirectory(quarantineDirectory)
        let target = Quarantine.path(for: path, offset: offset)
        if offset == 0 {
            try? fd.close()
            try FileOps.renameFile(path, to: target)
            try FileOps.syncDirectory(quarantineDirectory)
            try FileOps.syncDirectory(directory)
            return target
        }
        let out = try FileOps.openForWriting(target, create: true)
        defer { try? out.close() }
        do {
            try out.resize(to: 0)
            var position = offset
            while position < fileSize {
                let chunk = try fd.readBytes(at: position, count: min(1 << 20, (fileSize - position).clamped))
                if chunk.isEmpty { break }
                _ = try out.writeAll(toAbsoluteOffset: position - offset, chunk)
                position += Int64(chunk.count)
            }
            try out.datasync()
        } catch {
            throw SpoolError.from(error, call: "write", path: target, doing: "copying damaged bytes to quarantine")
        }
        try FileOps.syncDirectory(quarantineDirectory)
        try truncate(fd, to: offset, path: path)
        return target
    }
}
