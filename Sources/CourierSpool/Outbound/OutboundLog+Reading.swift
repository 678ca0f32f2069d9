import Synchronization
import CoreMetrics
import Logging
import SystemPackage

extension OutboundLog {
    private struct ReadPlan {
        var segment: Segment
        var first: UInt64
        var offsets: [UInt32]
        var end: Int64
    }

    /// Reads pending (unacknowledged, durable) records in sequence order, starting at
    /// `sequenceNumber` (or just above the acknowledged mark, whichever is higher).
    ///
    /// Returns at most `limit` records and, beyond the first, at most `maxBytes` of record
    /// data; an empty array when there is nothing more. Only the records asked for are read
    /// (one `pread` per segment touched), so the backlog is never loaded into memory. Every
    /// record is verified again: one that fails its checksum is reported (log, metric,
    /// ``SpoolEvent/corruptionFound(_:)``) and skipped, never returned. Sequence numbers in
    /// ``OutboundLogStatus/missingRanges`` are skipped too.
    ///
    /// Reads the file on the calling thread: call it from the node's I/O thread or another
    /// thread that may block, not from a Swift task.
    package func readPending(from sequenceNumber: UInt64, limit: Int, maxBytes: Int = 4 << 20) throws(SpoolError) -> [SpoolRecord] {
        guard limit > 0 else { return [] }
        let plans = state.withLock { state -> [ReadPlan] in
            var plans: [ReadPlan] = []
            var start = max(sequenceNumber, state.acknowledgedUpTo + 1)
            var remaining = limit
            var budget = Int64(maxBytes)
            var i = state.firstSegment(holdingAtLeast: start)
            while remaining > 0, i < state.segments.count {
                let index = state.segments[i]
                i += 1
                if index.count == 0 || index.lastSequence < start { continue }
                start = max(start, index.baseSequence)
                let firstPosition = Int(start - index.baseSequence)
                var count = min(remaining, index.count - firstPosition)
                // Respect the byte budget (but always take at least one record overall).
                let startOffset = Int64(index.offsets[firstPosition])
                func endOf(_ n: Int) -> Int64 {
                    let position = firstPosition + n
                    return position < index.count ? Int64(index.offsets[position]) : index.end
                }
                if endOf(count) - startOffset > budget {
                    var low = plans.isEmpty ? 1 : 0
                    var high = count
                    while low < high {
                        let mid = (low + high + 1) / 2
                        if endOf(mid) - startOffset <= budget { low = mid } else { high = mid - 1 }
                    }
                    count = low
                }
                if count == 0 { break }
                plans.append(ReadPlan(
                    segment: index.segment,
                    first: start,
                    offsets: Array(index.offsets[firstPosition..<(firstPosition + count)]),
                    end: endOf(count)
                ))
                remaining -= count
                budget -= endOf(count) - startOffset
                start += UInt64(count)
                if budget <= 0 { break }
            }
            return plans
        }
        var records: [SpoolRecord] = []
        records.reserveCapacity(plans.reduce(0) { $0 + $1.offsets.count })
        for plan in plans {
            let startOffset = Int64(plan.offsets[0])
            let bytes: [UInt8]
            do {
                bytes = try plan.segment.fd.readBytes(at: startOffset, count: Int(plan.end - startOffset))
            } catch {
                throw SpoolError.system("pread", error, path: plan.segment.path, doing: "reading pending records")
            }
            bytes.withUnsafeBytes { raw in
                for (position, offset) in plan.offsets.enumerated() {
                    let sequence = plan.first + UInt64(position)
                    let relative = Int(Int64(offset) - startOffset)
                    let end = position + 1 < plan.offsets.count ? Int(Int64(plan.offsets[position + 1]) - startOffset) : raw.count
                    let slice = UnsafeRawBufferPointer(rebasing: raw[relative..<max(relative, min(end, raw.count))])
                    switch RecordFormat.decode(slice, at: 0, maxLength: configuration.maxRecordSize) {
                    case .record(let header) where header.sequenceNumber == sequence && header.length == slice.count:
                        switch MessageBody.split(UnsafeRawBufferPointer(rebasing: slice[RecordFormat.headerSize...]), flags: header.flags) {
                        case .success(let (headers, payload)):
                            records.append(SpoolRecord(
                                sequenceNumber: sequence,
                                enqueuedAt: header.enqueuedAt,
                                expiresAt: header.expiresAt == 0 ? nil : header.expiresAt,
                                attempt: header.attempt,
                                flags: header.flags,
                                headers: headers,
                                payload: payload
                            ))
                        case .failure(let error):
                            reportBadRead(sequence: sequence, path: plan.segment.path, offset: Int64(offset), reason: error.reason)
                        }
                    case .record:
                        reportBadRead(sequence: sequence, path: plan.segment.path, offset: Int64(offset), reason: "record at this offset does not hold sequence \(sequence)")
                    case .incomplete:
                        reportBadRead(sequence: sequence, path: plan.segment.path, offset: Int64(offset), reason: "record shorter than when it was written")
                    case .invalid(let reason):
                        reportBadRead(sequence: sequence, path: plan.segment.path, offset: Int64(offset), reason: reason)
                    }
                }
            }
        }
        return records
    }

    private func reportBadRead(sequence: UInt64, path: FilePath, offset: Int64, reason: String) {
        // Acknowledged while it was being read: its segment may have been deleted and its
        // file reused meanwhile (``SparePool``). Not wanted any more, so not damage either.
        if sequence <= state.withLock({ $0.acknowledgedUpTo }) { return }
        let first = reportedBadReads.withLock { $0.insert(sequence).inserted }
        guard first else { return }
        metrics.corruptions.increment()
        configuration.logger.error("spool: a pending record failed verification on read; it is skipped and never delivered", metadata: [
            "peer": "\(peer)", "file": "\(path)", "offset": "\(offset)", "sequence": "\(sequence)", "reason": "\(reason)",
        ])
        report(.corruptionFound(CorruptionReport(peer: peer, path: path, offset: offset, reason: "sequence \(sequence): \(reason)", quarantinedTo: nil)))
    }
}
