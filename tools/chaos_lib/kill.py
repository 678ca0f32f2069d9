"""Scenario 1: SIGKILL of the producer, the consumer or both at random moments while messages
flow, restarts on the same data directories, then a drain with `courier-producer --wait`."""
import time

from .check import Report, parse_consumer
from .common import complete_lines, free_port, write_lines


def run(ctx):
    port = free_port()
    peer = f"C=tcp://127.0.0.1:{port}"
    rate = 300 if ctx.ci else 800
    runs = {"c": 0, "p": 0}

    def consumer():
        runs["c"] += 1
        n = runs["c"]
        return ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}"],
                         f"c{n}.out", f"c{n}.err")

    def producer():
        runs["p"] += 1
        n = runs["p"]
        # Payloads unique across runs, so a duplicate is visible as one.
        write_lines(ctx.path(f"p{n}.in"), [f"r{n}-{i}" for i in range(1, 5001)])
        return ctx.start("courier-producer", ["--id", "P", "--data-dir", ctx.path("p"), "--peer", peer,
                                              "--print-spooled", "--rate", str(rate), "--batch", "32"],
                         f"p{n}.out", f"p{n}.err", stdin=ctx.path(f"p{n}.in"))

    problems = []
    c, p = consumer(), producer()
    end = time.monotonic() + ctx.duration
    while time.monotonic() < end:
        ctx.sleep_random(0.05, 0.7)          # a random moment of traffic
        victim = ctx.random.randrange(3)     # 0 consumer, 1 producer, 2 both
        if victim != 1:
            c.kill9()
            ctx.faults += 1
        if victim != 0:
            p.kill9()
            ctx.faults += 1
        if ctx.random.random() < 0.5:        # sometimes stay down a while, so messages spool
            ctx.sleep_random(0, 0.4)
        if not c.running():
            c = consumer()
        if not p.running():
            code = p.wait(1)
            if code not in (0, 137):
                problems.append(f"producer run {runs['p']} exited {code}: {p.stderr_text()[-300:]}")
            p = producer()
        ctx.progress(f"{ctx.faults} kills, {end - time.monotonic():.0f} s left")
    p.kill9()
    ctx.faults += 1
    if not c.running():
        c = consumer()

    drain = ctx.start("courier-producer", ["--id", "P", "--data-dir", ctx.path("p"), "--peer", peer, "--wait"],
                      "drain.out", "drain.err")
    code = drain.wait(180)
    if code != 0:
        problems.append(f"the drain exited {code}: {drain.stderr_text()[-300:]}")
        drain.kill9()
    if c.stop() != 0:
        problems.append("the last consumer did not stop cleanly")

    confirmed = []
    for n in range(1, runs["p"] + 1):
        confirmed += complete_lines(ctx.path(f"p{n}.out"))
    outputs = [parse_consumer(ctx.path(f"c{n}.out")) for n in range(1, runs["c"] + 1)]
    report = Report(confirmed, outputs, senders={"P"},
                    valid_payload=lambda payload: payload.startswith("r") and payload[1:].replace("-", "", 1).isdigit())
    ctx.notes.append(f"{runs['p']} producer and {runs['c']} consumer runs")
    if not confirmed:
        problems.append("the producer confirmed nothing")
    return report, problems
