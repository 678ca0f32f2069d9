#!/usr/bin/env python3
"""Writes the seed corpus for the wire-decoder fuzzer (fuzz/corpus/).

The frames are built here from the byte layout in docs/PROTOCOL.md ("Frames"), not with
WireEncoder, so that the seeds also check the decoder against the document: tools/fuzz runs
every `valid-*` seed through the decoder expecting acceptance and every `refused-*` seed
expecting refusal before it starts fuzzing. Deterministic; run it again after a protocol
change and commit the result:

    python3 fuzz/make-corpus.py            # rewrites fuzz/corpus/
"""
import os
import struct
import sys

MAX_SEQUENCE = 1 << 62
HELLO, WELCOME, DATA, ACK, OUTCOMES = 1, 2, 3, 4, 5
REJECTED, EXPIRED = 1, 2
STREAM = 0x1122334455667788


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the check value (CRC32C.swift)


def frame(kind: int, body: bytes, version: int = 1) -> bytes:
    """magic "CR", the version, kind, body, CRC-32C of everything before the trailer."""
    head = b"CR" + bytes([version, kind]) + body
    return head + struct.pack("<I", crc32c(head))


def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def i64(v): return struct.pack("<q", v)


def hello(stream, first, next_):
    return frame(HELLO, u64(stream) + u64(first) + u64(next_))


def welcome(stream, processed, received):
    return frame(WELCOME, u64(stream) + u64(processed) + u64(received))


def record(sequence, attempt=1, tombstone=False, expiry=0, payload=b""):
    return (u64(sequence) + u32(attempt) + bytes([1 if tombstone else 0]) + i64(expiry)
            + u32(len(payload)) + payload)


def data(stream, records):
    return frame(DATA, u64(stream) + u16(len(records)) + b"".join(records))


def hello2(stream, first, next_, nonce):
    return frame(HELLO, u64(stream) + u64(first) + u64(next_) + u64(nonce), version=2)


def welcome2(stream, processed, received, nonce, window, max_size, ranges=()):
    body = u64(stream) + u64(processed) + u64(received) + u64(nonce) + u32(window) + u32(max_size) + u16(len(ranges))
    for low, high in ranges:
        body += u64(low) + u64(high)
    return frame(WELCOME, body, version=2)


def header_block(pairs):
    """docs/PROTOCOL.md, "Header block": u8 count; per header u8 name length, name, u16 value
    length, value."""
    out = bytes([len(pairs)])
    for name, value in pairs:
        n = name.encode("utf-8") if isinstance(name, str) else name
        v = value.encode("utf-8") if isinstance(value, str) else value
        out += bytes([len(n)]) + n + u16(len(v)) + v
    return out


def record2(sequence, attempt=1, tombstone=False, expiry=0, headers=b"", payload=b""):
    return (u64(sequence) + u32(attempt) + bytes([1 if tombstone else 0]) + i64(expiry)
            + u16(len(headers)) + u32(len(payload)) + headers + payload)


def data2(stream, records):
    return frame(DATA, u64(stream) + u16(len(records)) + b"".join(records), version=2)


def ack(stream, processed, received, ranges=()):
    body = u64(stream) + u64(processed) + u64(received) + u16(len(ranges))
    for low, high in ranges:
        body += u64(low) + u64(high)
    return frame(ACK, body)


def outcomes(stream, entries):
    body = u64(stream) + u16(len(entries))
    for sequence, code, reason in entries:
        raw = reason.encode("utf-8") if isinstance(reason, str) else reason
        body += u64(sequence) + bytes([code]) + u16(len(raw)) + raw
    return frame(OUTCOMES, body)


def seeds():
    m = MAX_SEQUENCE
    expiry = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
    # Frames the decoder must accept.
    yield "valid-hello-fresh", hello(STREAM, 1, 1)
    yield "valid-hello-resume", hello(STREAM, 100, 250)
    yield "valid-welcome", welcome(STREAM, 99, 120)
    yield "valid-data-one", data(STREAM, [record(1, payload=b"hello")])
    yield "valid-data-mixed", data(STREAM, [
        record(1, payload=b"first message"),
        record(2, attempt=2, tombstone=True),
        record(5, attempt=3, expiry=expiry, payload=bytes(range(0, 40))),
        record(6),  # an empty payload that is not a tombstone
        record(9, tombstone=True, expiry=expiry),
    ])
    yield "valid-ack-plain", ack(STREAM, 10, 20)
    yield "valid-ack-ranges", ack(STREAM, 10, 30, [(12, 13), (15, 15), (18, 25)])
    yield "valid-outcomes", outcomes(STREAM, [
        (3, REJECTED, "refusé : données invalides ✗ 数据"),
        (4, EXPIRED, ""),
    ])
    yield "valid-outcomes-long-reason", outcomes(STREAM, [(7, REJECTED, "é" * 512)])  # 1024 bytes
    yield "valid-versions", frame(6, bytes([2, 1, 2]))   # VERSIONS: no stream id
    # Edges: every mark at the limit 2^62.
    yield "valid-edge-hello-max", hello(0xFFFFFFFFFFFFFFFF, m, m)
    yield "valid-edge-welcome-max", welcome(STREAM, m, m)
    yield "valid-edge-data-max", data(STREAM, [record(m - 1, attempt=0xFFFFFFFF, expiry=(1 << 63) - 1),
                                               record(m, tombstone=True)])
    yield "valid-edge-ack-max", ack(STREAM, m - 4, m, [(m - 2, m)])
    yield "valid-edge-outcomes-max", outcomes(STREAM, [(m, EXPIRED, "x")])
    # Version 2.
    block = header_block([("content-type", "text/plain"), ("grüße", "naïve ✓")])
    yield "valid-v2-hello", hello2(STREAM, 1, 1, 0xFEDCBA9876543210)
    yield "valid-v2-welcome", welcome2(STREAM, 3, 7, 42, 8192, 1 << 20)
    yield "valid-v2-welcome-ranges", welcome2(STREAM, 3, 7, 43, 16, 100, [(9, 9), (11, 14)])
    yield "valid-v2-data-headers", data2(STREAM, [
        record2(1, headers=block, payload=b"with headers"),
        record2(2, attempt=2, tombstone=True),
        record2(3, payload=b"without"),
        record2(4, headers=header_block([("k", "")])),
    ])
    yield "valid-v2-ack", frame(ACK, u64(STREAM) + u64(1) + u64(2) + u16(0), version=2)
    # Frames the decoder must refuse: each one field or byte off an accepted frame.
    yield "refused-v2-hello-v1-length", frame(HELLO, u64(STREAM) + u64(1) + u64(1), version=2)
    yield "refused-v2-welcome-window-0", welcome2(STREAM, 3, 7, 1, 0, 100)
    yield "refused-v2-welcome-range-touching", welcome2(STREAM, 3, 7, 1, 16, 100, [(8, 9)])
    yield "refused-v2-data-repeated-name", data2(STREAM, [record2(1, headers=header_block([("a", "1"), ("a", "2")]))])
    yield "refused-v2-data-tombstone-headers", data2(STREAM, [record2(1, tombstone=True, headers=header_block([("a", "1")]))])
    yield "refused-v2-data-block-past-end", frame(DATA, u64(STREAM) + u16(1) + u64(1) + u32(1) + bytes([0]) + i64(0)
                                                  + u16(9) + u32(0) + header_block([("k", "v")]), version=2)
    yield "refused-version-3", frame(HELLO, u64(STREAM) + u64(1) + u64(1) + u64(1), version=3)
    yield "refused-versions-in-v2", frame(6, bytes([2, 1, 2]), version=2)
    yield "refused-empty", b""
    yield "refused-header-only", frame(HELLO, b"")
    yield "refused-hello-above-max", hello(STREAM, 1, m + 1)
    yield "refused-data-sequence-above-max", data(STREAM, [record(m + 1)])
    yield "refused-data-not-increasing", data(STREAM, [record(5), record(5)])
    yield "refused-data-tombstone-payload", data(STREAM, [record(1, tombstone=True, payload=b"x")])
    yield "refused-ack-touching-ranges", ack(STREAM, 10, 30, [(12, 13), (14, 15)])
    yield "refused-ack-range-above-max", ack(STREAM, 10, 30, [(12, m + 1)])
    yield "refused-outcomes-bad-utf8", outcomes(STREAM, [(3, REJECTED, b"\xc3\x28")])
    yield "refused-versions-not-ascending", frame(6, bytes([2, 2, 1]))
    bad_crc = bytearray(hello(STREAM, 1, 1))
    bad_crc[-1] ^= 0xFF
    yield "refused-checksum", bytes(bad_crc)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    names = set()
    for name, content in seeds():
        names.add(name)
        with open(os.path.join(out, name), "wb") as f:
            f.write(content)
    stale = [n for n in os.listdir(out) if n not in names]
    for n in stale:
        os.remove(os.path.join(out, n))
    print(f"wrote {len(names)} seeds to {out}" + (f", removed {len(stale)} stale" if stale else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
