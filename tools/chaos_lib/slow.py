"""Scenario 7: a slow consumer. It settles each message only after --ack-delay-ms, far slower
than the producer sends; the backlog waits in the producer's spool (the in-flight window
bounds what is on the wire and in the consumer). Memory on both sides must stay bounded.
Then a fast consumer takes over and everything is delivered."""
import time

from .check import Report, parse_consumer
from .common import complete_lines, free_port, write_lines

MIB = 1024


def run(ctx):
    port = free_port()
    peer = f"C=tcp://127.0.0.1:{port}"
    delay_ms = 5 if ctx.ci else 10
    rate = 1000 if ctx.ci else 3000            # against at most 1000 / delay_ms settled a second
    problems = []
    consumer = ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}",
                                              "--ack-delay-ms", str(delay_ms)], "c1.out", "c1.err")
    write_lines(ctx.path("p.in"), [f"s-{n}" for n in range(1, int(rate * (ctx.duration + 10)) + 1)])
    producer = ctx.start("courier-producer", ["--id", "P", "--data-dir", ctx.path("p"), "--peer", peer, "--print-spooled",
                                              "--rate", str(rate), "--batch", "64"], "p1.out", "p1.err", stdin=ctx.path("p.in"))
    ctx.faults += 1
    rss = {"producer": [], "consumer": []}
    end = time.monotonic() + ctx.duration
    while time.monotonic() < end and producer.running() and consumer.running():
        for name, proc in (("producer", producer), ("consumer", consumer)):
            value = proc.rss_kib()
            if value:
                rss[name].append(value)
        ctx.progress(f"producer RSS {rss['producer'][-1:]} KiB, consumer RSS {rss['consumer'][-1:]} KiB")
        time.sleep(0.25)
    if not consumer.running():
        problems.append(f"the slow consumer died: {consumer.stderr_text()[-300:]}")
    producer.kill9()
    code, status = ctx.spool("status", ctx.path("p"), "--json")
    confirmed = complete_lines(ctx.path("p1.out"))
    slow_seen = len(complete_lines(ctx.path("c1.out")))
    ctx.notes.append(f"{len(confirmed)} sent at {rate}/s, {slow_seen} settled by the slow consumer")
    for name, samples in rss.items():
        if len(samples) >= 4:
            warm = samples[min(len(samples) // 4, 8)]
            peak = max(samples)
            ctx.notes.append(f"{name} RSS {warm // MIB}->{peak // MIB} MiB")
            if peak - warm > 32 * MIB:
                problems.append(f"{name} RSS grew from {warm // MIB} to {peak // MIB} MiB with a slow consumer")
    if slow_seen >= len(confirmed) * 0.9:
        problems.append("the consumer kept up: no back-pressure was exercised (raise the rate)")
    slow_exit = consumer.stop()
    if slow_exit != 0:
        problems.append("the slow consumer did not stop cleanly")
    fast = ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}"],
                     "c2.out", "c2.err")
    drain = ctx.start("courier-producer", ["--id", "P", "--data-dir", ctx.path("p"), "--peer", peer, "--wait"],
                      "drain.out", "drain.err")
    code = drain.wait(180)
    if code != 0:
        problems.append(f"the drain exited {code}: {drain.stderr_text()[-300:]}")
        drain.kill9()
    if fast.stop() != 0:
        problems.append("the fast consumer did not stop cleanly")
    outputs = [parse_consumer(ctx.path("c1.out")), parse_consumer(ctx.path("c2.out"))]
    # A consumer that exits 0 after SIGTERM has acknowledged every message it printed.
    report = Report(confirmed, outputs, senders={"P"}, graceful=[slow_exit == 0, False], valid_payload=lambda payload: payload.startswith("s-") and payload[2:].isdigit())
    return report, problems
