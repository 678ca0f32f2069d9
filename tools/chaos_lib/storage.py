"""Scenarios 3–5, about the producer's spool: a long peer outage, a full disk, a damaged spool."""
import glob
import json
import os
import struct
import subprocess
import time

from .check import Combined, Report, parse_consumer
from .common import Skip, complete_lines, free_port, rss_kib, write_lines

MIB = 1024


def sample_rss(proc, samples, until=None):
    """Samples VmRSS every 0.2 s while `proc` runs (or until `until()` is true)."""
    while proc.running() and not (until and until()):
        value = proc.rss_kib()
        if value:
            samples.append(value)
        time.sleep(0.2)


def drain(ctx, pid_name, data_dir, peer, name, timeout=300, verbose=False):
    args = ["--id", pid_name, "--data-dir", data_dir, "--peer", peer, "--wait"] + (["--verbose"] if verbose else [])
    proc = ctx.start("courier-producer", args, f"{name}.out", f"{name}.err")
    samples = []
    deadline = time.monotonic() + timeout
    while proc.running() and time.monotonic() < deadline:
        value = proc.rss_kib()
        if value:
            samples.append(value)
        time.sleep(0.2)
    code = proc.wait(1)
    if code is None:
        proc.kill9()
    return proc, code, samples


# Scenario 3 ---------------------------------------------------------------------------------

def peer_down(ctx):
    """The consumer is absent while the producer spools far more than fits in memory, up to
    the spool limit. Odd cycles use --when-spool-full wait: sends must stop at the limit (the
    producer stays up, suspended) and resume once the consumer is back. Even cycles use
    --when-spool-full fail: the producer must stop with a clear spool-full error, and every
    message it confirmed must still be delivered. Producer RSS is sampled throughout."""
    port = free_port()
    peer = f"C=tcp://127.0.0.1:{port}"
    count = 20_000 if ctx.ci else 500_000
    limit = 8_000 if ctx.ci else 400_000
    batch = 256
    size = 100
    problems = []
    reports = []   # one per cycle: each cycle has its own sender, and its figures are kept, not its payloads
    cycle = 0
    end = time.monotonic() + ctx.duration
    growth = []
    rss_range, held, drain_peak, stalls = [], [], [], []
    while cycle == 0 or time.monotonic() < end or (ctx.ci and cycle < 2):
        cycle += 1
        mode = "wait" if cycle % 2 == 1 else "fail"
        producer_id = f"P{cycle}"          # payloads P<cycle>-n: unique across cycles
        data = ctx.path(f"p{cycle}")
        proc = ctx.start("courier-producer", ["--id", producer_id, "--data-dir", data, "--peer", peer,
                                              "--count", str(count), "--size", str(size), "--print-spooled",
                                              "--batch", str(batch), "--max-spool-messages", str(limit),
                                              "--when-spool-full", mode],
                         f"p{cycle}.out", f"p{cycle}.err")
        ctx.faults += 1                     # the outage
        samples = []                        # (fraction spooled, RSS KiB)
        out = ctx.path(f"p{cycle}.out")
        consumer = None
        stalled_since, stalled_at = None, -1
        deadline = time.monotonic() + 600
        while proc.running() and time.monotonic() < deadline:
            value = proc.rss_kib()
            try:
                spooled = os.path.getsize(out) // (size + 1)
            except OSError:
                spooled = 0
            if value:
                samples.append((spooled / count, value))
            ctx.progress(f"cycle {cycle} ({mode}): {spooled} spooled with the consumer "
                         f"{'back' if consumer else 'down'}, RSS {value or 0} KiB")
            if consumer is None and mode == "wait":
                # Back-pressure: the producer reaches the limit and stays there, alive.
                if spooled != stalled_at:
                    stalled_since, stalled_at = time.monotonic(), spooled
                elif spooled >= limit - batch and time.monotonic() - stalled_since >= 2:
                    if spooled > limit:
                        problems.append(f"cycle {cycle}: {spooled} spooled, over the limit of {limit}")
                    pending = spool_pending(ctx, data, problems, cycle)
                    if pending is not None and pending > limit:
                        problems.append(f"cycle {cycle}: {pending} pending, over the limit of {limit}")
                    stalls.append(spooled)
                    held.append(pending or 0)
                    consumer = start_consumer(ctx, port, cycle)
            time.sleep(0.2)
        code = proc.wait(5)
        if code is None:
            proc.kill9()
            problems.append(f"cycle {cycle}: the producer ({mode}) did not finish within 600 s")
        lines = complete_lines(out)
        if mode == "wait":
            if consumer is None:
                problems.append(f"cycle {cycle}: the producer never stopped at the spool limit of {limit} "
                                f"(exit {code}, {len(lines)} spooled)")
            if code != 0:
                problems.append(f"cycle {cycle}: the producer exited {code}: {proc.stderr_text()[-300:]}")
        else:
            if code != 1 or "full" not in proc.stderr_text():
                problems.append(f"cycle {cycle}: with --when-spool-full fail the producer should exit 1 "
                                f"saying the spool is full; it exited {code}: {proc.stderr_text()[-300:]}")
            if len(lines) > limit or len(lines) < limit - batch:
                problems.append(f"cycle {cycle}: {len(lines)} spooled before the failure; the limit is {limit}")
            pending = spool_pending(ctx, data, problems, cycle)
            if pending is not None and pending != len(lines):
                problems.append(f"cycle {cycle}: {len(lines)} confirmed but the spool holds {pending} pending")
            stalls.append(len(lines))
            held.append(pending or 0)
        early = [rss for done, rss in samples if done >= 0.1]
        if early:
            grew = max(early) - early[0]
            growth.append(grew)
            if grew > 32 * MIB:
                problems.append(f"cycle {cycle}: producer RSS grew by {grew // MIB} MiB while spooling (from {early[0] // MIB} MiB)")
            rss_range.append((early[0], max(early)))
        if consumer is None:
            consumer = start_consumer(ctx, port, cycle)
        dproc, code, dsamples = drain(ctx, producer_id, data, peer, f"drain{cycle}")
        if code != 0:
            problems.append(f"cycle {cycle}: the drain exited {code}: {dproc.stderr_text()[-300:]}")
        if dsamples:
            drain_peak.append(max(dsamples))
        if consumer.stop() != 0:
            problems.append(f"cycle {cycle}: the consumer did not stop cleanly")
        reports.append(Report(lines, [parse_consumer(ctx.path(f"c{cycle}.out"))], senders={producer_id},
                              valid_payload=generated_payload(size)))
    ctx.notes.append(f"{cycle} outage(s), limit {limit}: sends stopped at {min(stalls) if stalls else '?'}"
                     f"-{max(stalls) if stalls else '?'}, at most {max(held) if held else 0} pending on disk"
                     + (f", producer RSS {min(a for a, _ in rss_range) // MIB}->{max(b for _, b in rss_range) // MIB} MiB"
                        if rss_range else "")
                     + (f", drain RSS max {max(drain_peak) // MIB} MiB" if drain_peak else ""))
    return Combined(reports), problems


def spool_pending(ctx, data, problems, cycle):
    """Messages pending in a spool, from `courier-spool status --json` (None if unreadable)."""
    status_code, status = ctx.spool("status", data, "--json")
    try:
        return sum(p.get("pending", 0) for p in json.loads(status).get("peers", []))
    except (ValueError, AttributeError):
        problems.append(f"cycle {cycle}: courier-spool status --json gave {status[:200]}")
        return None


def start_consumer(ctx, port, cycle):
    return ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}"],
                     f"c{cycle}.out", f"c{cycle}.err")


def generated_payload(size):
    def valid(payload):
        head = payload.rstrip(".")
        name, _, number = head.partition("-")
        return number.isdigit() and (len(payload) == size or (len(head) >= size and head == payload))
    return valid


# Scenario 4 ---------------------------------------------------------------------------------

def disk_full(ctx):
    """The producer's data directory on a small tmpfs: sends fail with the storage error, the
    producer exits non-zero, nothing already spooled is lost; after space is freed a new run
    delivers everything."""
    if os.geteuid() != 0:
        raise Skip("needs root to mount a tmpfs (run as root, or in a container with CAP_SYS_ADMIN)")
    mount = ctx.path("tmpfs")
    os.makedirs(mount)
    # Smaller than three spool segments (8 MiB each): a wholly acknowledged newest segment
    # must give its space back, or delivering everything would free nothing and the next
    # cycle could never send (docs/RELIABILITY.md, finding 2).
    size_mib = 24
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "chaos-diskfull", mount], check=True)
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", mount]))
    port = free_port()
    peer = f"C=tcp://127.0.0.1:{port}"
    data = os.path.join(mount, "p")
    payload_size = 1000
    errors = []
    held_after_drain = []
    problems = []
    confirmed = []
    outputs = []
    cycle = 0
    end = time.monotonic() + ctx.duration
    while cycle == 0 or time.monotonic() < end:
        cycle += 1
        # Leave a few MiB free, then spool until the disk is full.
        filler = os.path.join(mount, "filler")
        stat = os.statvfs(mount)
        free = stat.f_bavail * stat.f_frsize
        with open(filler, "wb") as handle:
            handle.write(b"\0" * max(0, free - (3 << 20) - ctx.random.randrange(1 << 20)))
        # More than the whole disk (24 MiB), so that the disk fills even after the producer
        # deletes its spare segment files (up to two of 8 MiB) to make room.
        lines = [f"d{cycle}-{n}-".ljust(payload_size, ".") for n in range(1, 30001)]
        write_lines(ctx.path(f"p{cycle}a.in"), lines)
        proc = ctx.start("courier-producer", ["--id", "P", "--data-dir", data, "--peer", peer, "--print-spooled",
                                              "--batch", str(ctx.random.choice([1, 8, 64]))],
                         f"p{cycle}a.out", f"p{cycle}a.err", stdin=ctx.path(f"p{cycle}a.in"))
        code = proc.wait(120)
        ctx.faults += 1
        err = proc.stderr_text()
        if code in (0, None):
            problems.append(f"cycle {cycle}: the producer did not fail on the full disk (exit {code})")
            proc.kill9()
        elif "full" not in err.lower() and "space" not in err.lower():
            problems.append(f"cycle {cycle}: the producer's error does not say the disk is full: {err[-300:]}")
        if not errors and err.strip():
            errors.append(err.strip().splitlines()[-1][:110])
        confirmed += complete_lines(ctx.path(f"p{cycle}a.out"))
        verify_code, verify = ctx.spool("verify", data)
        if verify_code != 0:
            problems.append(f"cycle {cycle}: courier-spool verify after the full disk exited {verify_code}: {verify[-300:]}")
        # Space returns: the filler goes; a new run sends more and waits for everything.
        os.remove(filler)
        consumer = ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}"],
                             f"c{cycle}.out", f"c{cycle}.err")
        write_lines(ctx.path(f"p{cycle}b.in"), [f"e{cycle}-{n}-".ljust(payload_size, ".") for n in range(1, 501)])
        proc = ctx.start("courier-producer", ["--id", "P", "--data-dir", data, "--peer", peer, "--print-spooled", "--wait"],
                         f"p{cycle}b.out", f"p{cycle}b.err", stdin=ctx.path(f"p{cycle}b.in"))
        code = proc.wait(180)
        if code != 0:
            problems.append(f"cycle {cycle}: the run after freeing space exited {code}: {proc.stderr_text()[-300:]}")
            proc.kill9()
        confirmed += complete_lines(ctx.path(f"p{cycle}b.out"))
        if consumer.stop() != 0:
            problems.append(f"cycle {cycle}: the consumer did not stop cleanly")
        outputs.append(parse_consumer(ctx.path(f"c{cycle}.out")))
        held = sum(os.path.getsize(path) for path in glob.glob(os.path.join(data, "outbound", "*", "seg-*.log")))
        held_after_drain.append(held)
        ctx.progress(f"cycle {cycle} done")
        if problems:
            break
        if ctx.ci:
            break

    ctx.notes.append(f"{cycle} disk-full cycle(s); after the drains 0 pending but up to "
                     f"{max(held_after_drain or [0]) >> 20} MiB of acknowledged segments held on disk; "
                     f"the error: {errors[0] if errors else '(none)'}")
    if problems:   # keep the spool: the tmpfs goes away at the end
        subprocess.run(["cp", "-a", data, ctx.path("spool-at-end")])

    def valid(payload):
        head = payload.rstrip(".")
        return len(payload) == payload_size and head[:1] in "de" and head.count("-") == 2
    report = Report(confirmed, outputs, senders={"P"}, valid_payload=valid)
    return report, problems


# Scenario 5 ---------------------------------------------------------------------------------

def records(path):
    """The records of a spool segment: (offset, length, sequence number, payload)."""
    with open(path, "rb") as handle:
        data = handle.read()
    out = []
    offset = 48
    while offset + 40 <= len(data):
        length = struct.unpack_from("<I", data, offset)[0]
        if length < 40 or offset + length > len(data):
            break
        seq = struct.unpack_from("<Q", data, offset + 16)[0]
        out.append((offset, length, seq, data[offset + 40:offset + length]))
        offset += length
    return out


def damaged_sequences(before, after, recs):
    """The sequence numbers of the records (from `records()` of the file before the damage)
    holding a byte that differs between the file's contents `before` and `after` (two flips of
    one bit cancel out; bytes past the end of `after` count as changed)."""
    changed = [at for at in range(48, len(before)) if at >= len(after) or before[at] != after[at]]
    hit = []
    for offset, length, seq, _ in recs:
        if any(offset <= at < offset + length for at in changed):
            hit.append(seq)
    return hit


def quarantined_sequences(directory):
    """The sequence numbers in the quarantined bytes of a peer's spool (the records' lengths are
    intact: the scenario flips payload bits only)."""
    seqs = []
    for path in glob.glob(os.path.join(directory, "quarantine", "*.quarantined")):
        with open(path, "rb") as handle:
            data = handle.read()
        offset = 0
        while offset + 40 <= len(data):
            length = struct.unpack_from("<I", data, offset)[0]
            if length < 40:
                break
            seqs.append(struct.unpack_from("<Q", data, offset + 16)[0])
            offset += length
    return seqs


def damaged_spool(ctx):
    """Bit flips and a torn tail in a stopped producer's spool. verify must fail before the
    restart (for flips) and report each damaged range, the node's log must report the damage,
    the damaged records are quarantined and never delivered, and the loss is exactly those
    records: recovery resynchronises on the next valid record, so every other record of the
    segment, before and after the damage, is delivered."""
    port = free_port()
    peer = f"C=tcp://127.0.0.1:{port}"
    size = 120
    problems = []
    expected_lost = {}   # cycle -> payloads of the records it damaged
    consumer = ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}"],
                         "c1.out", "c1.err")
    cycle = 0
    tally = {"flip cycles": 0, "bits flipped": 0, "records damaged": 0, "records quarantined": 0, "torn tails": 0,
             "drains exiting non-zero": 0}
    end = time.monotonic() + ctx.duration
    while cycle < 2 or time.monotonic() < end:
        cycle += 1
        kind = "torn" if cycle % 2 == 0 else "flip"
        producer_id = f"P{cycle}"
        data = ctx.path(f"p{cycle}")
        count = ctx.random.randrange(500, 3000) if ctx.ci else ctx.random.randrange(2000, 20000)
        # The consumer is away while this producer spools, so everything is on disk.
        consumer.stop()
        proc = ctx.start("courier-producer", ["--id", producer_id, "--data-dir", data, "--peer", peer,
                                              "--count", str(count), "--size", str(size), "--print-spooled"],
                         f"p{cycle}.out", f"p{cycle}.err")
        if proc.wait(120) != 0:
            problems.append(f"cycle {cycle}: spooling exited non-zero: {proc.stderr_text()[-300:]}")
        peer_dir = os.path.join(data, "outbound", "~C")
        segments = sorted(glob.glob(os.path.join(peer_dir, "seg-*.log")))
        if not segments:
            problems.append(f"cycle {cycle}: no segment in {peer_dir}")
            continue
        segment = segments[-1]
        recs = records(segment)
        payload_of = {seq: payload.decode() for _, _, seq, payload in recs}
        with open(segment, "rb") as handle:
            before = handle.read()
        if kind == "flip":
            first = ctx.random.randrange(len(recs) // 2, len(recs))
            flips = ctx.random.randrange(1, 4)
            with open(segment, "r+b") as handle:
                for n in range(flips):
                    offset, length, seq, _ = recs[first] if n == 0 else recs[ctx.random.randrange(first, len(recs))]
                    at = offset + 40 + ctx.random.randrange(length - 40)
                    handle.seek(at)
                    byte = handle.read(1)[0]
                    handle.seek(at)
                    handle.write(bytes([byte ^ (1 << ctx.random.randrange(8))]))
                    ctx.faults += 1
        else:
            offset, length, seq, _ = recs[-1]
            with open(segment, "r+b") as handle:
                handle.truncate(offset + ctx.random.randrange(1, length))
            ctx.faults += 1
        with open(segment, "rb") as handle:
            after = handle.read()
        # Exactly the records holding a changed (or cut) byte are lost; recovery quarantines
        # only them and keeps every record after them.
        damaged = damaged_sequences(before, after, recs)
        expected_lost[cycle] = [payload_of[seq] for seq in damaged]
        verify_code, verify = ctx.spool("verify", data, "--json")
        if kind == "flip" and damaged and verify_code != 1:
            problems.append(f"cycle {cycle}: courier-spool verify exited {verify_code} on flipped bits (expected 1): {verify[-300:]}")
        if kind == "flip":
            # verify reports one damaged range per run of adjacent damaged records, each
            # starting at a damaged record (the last one, with nothing after it, is reported
            # up to the end of the file).
            try:
                reported = sorted(p["offset"] for p in json.loads(verify).get("problems", []))
            except (ValueError, AttributeError, KeyError, TypeError):
                reported = None
            start_of = {seq: offset for offset, _, seq, _ in recs}
            runs = [seq for seq in sorted(damaged) if seq - 1 not in damaged]
            if reported != sorted(start_of[seq] for seq in runs):
                problems.append(f"cycle {cycle}: courier-spool verify reported damage at {reported}, expected the starts of "
                                f"the damaged records {[start_of[seq] for seq in runs]}: {verify[-300:]}")
        if kind == "torn":
            try:
                tails = json.loads(verify).get("incomplete_tails")
            except ValueError:
                tails = None
            if not tails:
                problems.append(f"cycle {cycle}: courier-spool verify did not list the torn tail: {verify[-300:]}")
        # Restart: the consumer comes back, the producer reopens the damaged spool and drains.
        consumer = ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}"],
                             f"c{cycle + 1}.out", f"c{cycle + 1}.err")
        dproc, code, _ = drain(ctx, producer_id, data, peer, f"drain{cycle}", timeout=120, verbose=True)
        log = dproc.stderr_text().lower()
        words = ("corrupt", "quarantin") if kind == "flip" else ("torn", "truncat")
        if damaged and not any(word in log for word in words):
            problems.append(f"cycle {cycle}: the producer's log does not report the {kind} damage: {log[-300:]}")
        if kind == "flip":
            quarantined = sorted(quarantined_sequences(peer_dir))
            if quarantined != sorted(damaged):
                problems.append(f"cycle {cycle}: quarantined sequence numbers {quarantined[:3]}…({len(quarantined)}) "
                                f"are not the damaged ones {damaged[:3]}…({len(damaged)})")
            tally["flip cycles"] += 1
            tally["bits flipped"] += flips
            tally["records damaged"] += len(damaged)
            tally["records quarantined"] += len(quarantined)
        else:
            tally["torn tails"] += 1
        if code != 0:
            tally["drains exiting non-zero"] += 1
        if code is None:
            problems.append(f"cycle {cycle}: the drain did not finish")
        verify_code, verify = ctx.spool("verify", data)
        if verify_code != 0:
            problems.append(f"cycle {cycle}: courier-spool verify after recovery exited {verify_code}: {verify[-300:]}")
        ctx.progress(f"cycle {cycle} ({kind}) done")
        if ctx.ci and cycle >= 2:
            break
    consumer.stop()
    ctx.notes.append(", ".join(f"{value} {name}" for name, value in tally.items()))
    # Checked one cycle at a time (each cycle's producer is drained while consumer run n + 1
    # is up), keeping only the figures: long runs confirm millions of messages.
    reports = [Report(complete_lines(ctx.path(f"p{n}.out")), [parse_consumer(ctx.path(f"c{n + 1}.out"))],
                      senders={f"P{n}"}, valid_payload=generated_payload(size),
                      expected_lost=expected_lost.get(n, []), allow_gaps=True)
               for n in range(1, cycle + 1)]
    return Combined(reports), problems
