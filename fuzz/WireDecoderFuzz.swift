// libFuzzer harness for the wire-frame decoder (Sources/Courier/Protocol/WireDecoder.swift).
//
// tools/fuzz compiles this file together with copies of WireDecoder.swift, WireFrame.swift,
// WireError.swift, WireEncoder.swift, CRC32C.swift, and the spool's HeaderBlock.swift and
// Bytes.swift (their `import CourierChecksum` and `import CourierSpool` removed: one module,
// so their `internal` and `package` declarations are visible here) and crc32c.c, with
// `-sanitize=fuzzer,address`.
//
// Every input is decoded as it is. When the decoder refuses it only for its checksum, the
// input is decoded a second time with a correct CRC-32C trailer in place of its last four
// bytes, so that mutations get past the checksum and reach the field checks.
//
// A refused frame must only throw. An accepted frame must keep every promise of
// docs/PROTOCOL.md ("Frames", "Validation"); a broken promise calls fatalError, which
// libFuzzer reports as a crash and saves the input.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The limit the harness decodes with (the brief's and a node's default scale: 1 MiB).
private let maxPayload = 1 << 20
private let decoder = WireDecoder(maxPayloadSize: maxPayload)
/// A second decoder with a small limit: it must accept exactly the accepted frames whose
/// payloads all fit, and refuse the others for the first payload above it.
private let smallLimit = 64
private let smallDecoder = WireDecoder(maxPayloadSize: smallLimit)

/// `COURIER_FUZZ_EXPECT=accept|refuse`: tools/fuzz checks the seed corpus with it (the raw
/// input must be accepted, or refused, or the harness traps).
private enum Expectation: Sendable { case any, accept, refuse }
private let expectation: Expectation = {
    guard let raw = getenv("COURIER_FUZZ_EXPECT") else { return .any }
    switch String(cString: raw) {
    case "accept": return .accept
    case "refuse": return .refuse
    default: return .any
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let outcome = decodeAndCheck(input)
    switch (expectation, outcome) {
    case (.accept, .failure(let error)): fail("a seed meant to be valid was refused: \(error)", input)
    case (.refuse, .success(let frame)): fail("a seed meant to be refused was accepted: \(frame)", input)
    default: break
    }
    if case .failure(.checksumMismatch) = outcome {
        _ = decodeAndCheck(resealed(input))
    }
    return 0
}

/// `bytes` with its last four bytes replaced by the CRC-32C of the rest.
private func resealed(_ bytes: [UInt8]) -> [UInt8] {
    var copy = bytes
    let bodyEnd = copy.count - Wire.trailerSize
    let crc = copy.withUnsafeBytes { raw in
        let body = UnsafeRawBufferPointer(rebasing: raw[..<bodyEnd])
        let crc = CRC32C.checksum(body)
        // The checksum the decoder relies on: the CPU's instruction (when there is one) and
        // the portable table agree, and continuing from a split point changes nothing.
        check(CRC32C.portableUpdate(0, body) == crc, "CRC-32C: table and instruction disagree", bytes)
        let split = bodyEnd == 0 ? 0 : Int(bytes[0]) % bodyEnd
        let continued = CRC32C.update(
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: body[..<split])),
            UnsafeRawBufferPointer(rebasing: body[split...]))
        check(continued == crc, "CRC-32C: update(checksum(a), b) != checksum(a + b)", bytes)
        return crc
    }
    withUnsafeBytes(of: crc.littleEndian) { trailer in
        for i in 0..<Wire.trailerSize { copy[bodyEnd + i] = trailer[i] }
    }
    return copy
}

private func decodeAndCheck(_ bytes: [UInt8]) -> Result<WireFrame, WireError> {
    let frame: WireFrame
    do {
        frame = try decoder.decode(bytes)
    } catch {
        // What the node does with a refused frame: log it and label a metric.
        _ = error.description
        _ = error.metricLabel
        return .failure(error)
    }
    checkInvariants(frame, bytes)
    return .success(frame)
}

private func checkInvariants(_ frame: WireFrame, _ bytes: [UInt8]) {
    // 1. The encoding is canonical: encoding the decoded frame gives back the very bytes,
    //    and decoding those gives an equal frame.
    let version = bytes[2]  // an accepted frame's version byte is one the decoder speaks
    check(version == 1 || version == 2, "accepted version \(version)", bytes)
    let encoded = WireEncoder.encode(frame, version: version)
    guard encoded == bytes else { fail("re-encoding gives other bytes: \(hex(encoded))", bytes) }
    let again: WireFrame
    do { again = try decoder.decode(encoded) } catch { fail("the re-encoded frame is refused: \(error)", bytes) }
    guard again == frame else { fail("decode(encode(frame)) differs: \(again) vs \(frame)", bytes) }

    // 2. Each kind's field promises.
    // (`if case`, not `switch`: a kind added to WireFrame later still builds here, and is
    // checked by the round trip above and the limit below until it gets its own checks.)
    let max = Wire.maxSequence
    if case .hello(let hello) = frame {
        check(hello.stream != 0, "hello stream 0", bytes)
        check(hello.firstUnacknowledged >= 1, "hello first unacknowledged 0", bytes)
        check(hello.firstUnacknowledged <= hello.nextSequence, "hello first above next", bytes)
        check(hello.nextSequence <= max, "hello next sequence above 2^62", bytes)
        check((hello.nonce != nil) == (version == 2), "hello nonce present in version 2 only", bytes)
    } else if case .welcome(let welcome) = frame {
        check(welcome.stream != 0, "welcome stream 0", bytes)
        check(welcome.processedUpTo <= welcome.receivedUpTo, "welcome processed above received", bytes)
        check(welcome.receivedUpTo <= max, "welcome received-up-to above 2^62", bytes)
        check((welcome.answer != nil) == (version == 2), "welcome answer present in version 2 only", bytes)
        if let answer = welcome.answer {
            check((1...UInt32(Wire.maxWindow)).contains(answer.window), "welcome window outside 1…2^20", bytes)
            check(answer.maxMessageSize >= 1, "welcome maximum message size 0", bytes)
            check(answer.receivedRanges.count <= Wire.maxRanges, "welcome range count", bytes)
            var lastCovered = welcome.receivedUpTo
            for range in answer.receivedRanges {
                check(range.lowerBound > lastCovered + 1, "welcome range not ascending, disjoint and gapped", bytes)
                check(range.upperBound <= max, "welcome range end above 2^62", bytes)
                lastCovered = range.upperBound
            }
        }
    } else if case .data(let batch) = frame {
        check(batch.stream != 0, "data stream 0", bytes)
        check((1...Wire.maxRecordsPerFrame).contains(batch.records.count), "data record count", bytes)
        var previous: UInt64 = 0
        var payloadEnd = Wire.headerSize + 8 + 2  // after the stream id and record count
        for record in batch.records {
            check(record.sequence > previous, "data sequence not strictly increasing", bytes)
            check(record.sequence <= max, "data sequence above 2^62", bytes)
            check(record.attempt >= 1, "data attempt 0", bytes)
            check(record.expiry >= 0, "data negative expiry", bytes)
            check(!record.isTombstone || record.payload.isEmpty, "tombstone with a payload", bytes)
            check(!record.isTombstone || record.headers.isEmpty, "tombstone with headers", bytes)
            check(version == 2 || record.headers.isEmpty, "headers in a version-1 record", bytes)
            check(record.headers.count <= HeaderBlock.maxBytes, "header block above 16 KiB", bytes)
            check(record.headers.isEmpty || HeaderBlock.decode(record.headers) != nil, "an accepted header block does not decode", bytes)
            check(record.payload.count <= maxPayload, "payload above the limit", bytes)
            // The payload is a slice of the received frame, after the previous one and
            // before the trailer.
            // The header block comes right before the payload.
            let payload = record.payload
            check(record.headers.isEmpty || record.headers.endIndex == payload.startIndex, "headers not just before the payload", bytes)
            check(payload.startIndex - record.headers.count >= payloadEnd + Wire.recordHeaderSize(version: version),
                  "record slices overlap what precedes them", bytes)
            check(payload.endIndex <= bytes.count - Wire.trailerSize, "payload slice runs into the trailer", bytes)
            check(payload.elementsEqual(bytes[payload.startIndex..<payload.endIndex]), "payload differs from the frame's bytes", bytes)
            payloadEnd = payload.endIndex
            previous = record.sequence
        }
    } else if case .ack(let ack) = frame {
        check(ack.stream != 0, "ack stream 0", bytes)
        check(ack.processedUpTo <= ack.receivedUpTo, "ack processed above received", bytes)
        check(ack.receivedUpTo <= max, "ack received-up-to above 2^62", bytes)
        check(ack.processedRanges.count <= Wire.maxRanges, "ack range count", bytes)
        var lastCovered = ack.processedUpTo  // ≤ 2^62, so + 1 cannot overflow
        for range in ack.processedRanges {
            check(range.lowerBound > lastCovered + 1, "ack range not ascending, disjoint and gapped", bytes)
            check(range.upperBound <= max, "ack range end above 2^62", bytes)
            lastCovered = range.upperBound
        }
    } else if case .outcomes(let outcomes) = frame {
        check(outcomes.stream != 0, "outcomes stream 0", bytes)
        check((1...Wire.maxOutcomesPerFrame).contains(outcomes.entries.count), "outcome count", bytes)
        for entry in outcomes.entries {
            check((1...max).contains(entry.sequence), "outcome sequence 0 or above 2^62", bytes)
            check(entry.reason.utf8.count <= Wire.maxReasonBytes, "reason above 1024 bytes", bytes)
        }
    }

    // 3. The payload limit: a smaller limit refuses exactly the frames with a payload above
    //    it, for the first such payload, and accepts the others unchanged.
    let firstOversized: Int? = if case .data(let batch) = frame {
        batch.records.first { $0.payload.count > smallLimit }?.payload.count
    } else {
        nil
    }
    do {
        let small = try smallDecoder.decode(bytes)
        check(firstOversized == nil, "a payload above the small limit was accepted", bytes)
        check(small == frame, "the small-limit decoder gives another frame", bytes)
    } catch {
        guard let firstOversized, error == .payloadTooLarge(firstOversized, limit: smallLimit) else {
            fail("the small-limit decoder refused for another reason: \(error)", bytes)
        }
    }
}

private func check(_ condition: Bool, _ what: @autoclosure () -> String, _ bytes: [UInt8]) {
    if !condition { fail(what(), bytes) }
}

private func fail(_ what: String, _ bytes: [UInt8]) -> Never {
    fatalError("wire decoder invariant broken: \(what)\ninput (\(bytes.count) bytes): \(hex(bytes))")
}

private func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    var out = ""
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xF)])
    }
    return out
}
