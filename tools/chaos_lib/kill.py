"""Scenario 1: SIGKILL of the producer, the consumer or both at random moments while messages
flow, restarts on the same data directories, then a drain with `courier-producer --wait`.
The consumer rejects about one message in ten (payloads ending in 7); the outcomes are checked
against the producer's dead letters (issue 21)."""
import time

from .check import Rejection, Report, dead_letters, drain_summary, outbound_status, parse_consumer
from .common import complete_lines, free_port, write_lines


def run(ctx):
    port = free_port()
    peer = f"C=tcp://127.0.0.1:{port}"
    rate = 300 if ctx.ci else 800
    runs = {"c": 0, "p": 0}
    # Deterministic (every delivery of such a message is rejected) and anchored (cheap).
    rejection = Rejection("^r[0-9]+-[0-9]*7$")

    def consumer():
        runs["c"] += 1
        n = runs["c"]
        return ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", f"tcp://127.0.0.1:{port}"]
                         + rejection.args(), f"c{n}.out", f"c{n}.err")

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

    # What the producer's data directory says before the drain (no producer runs now).
    letters_before, problem = dead_letters(ctx, ctx.path("p"), "C")
    if problem:
        problems.append("before the drain: " + problem)
    status_before = outbound_status(ctx, ctx.path("p"), "C")
    drain = ctx.start("courier-producer", ["--id", "P", "--data-dir", ctx.path("p"), "--peer", peer, "--wait"],
                      "drain.out", "drain.err")
    code = drain.wait(180)
    # Exit 1 is right when the drain heard rejections (checked against its summary below).
    if code not in (0, 1):
        problems.append(f"the drain exited {code}: {drain.stderr_text()[-300:]}")
        drain.kill9()
    if c.stop() != 0:
        problems.append("the last consumer did not stop cleanly")
    letters, problem = dead_letters(ctx, ctx.path("p"), "C")
    if problem:
        problems.append(problem)
    drained = {"summary": drain_summary(drain.stderr_text()), "exit": code, "status_before": status_before,
               "letters_before": letters_before}

    confirmed = []
    for n in range(1, runs["p"] + 1):
        confirmed += complete_lines(ctx.path(f"p{n}.out"))
    outputs = [parse_consumer(ctx.path(f"c{n}.out")) for n in range(1, runs["c"] + 1)]
    report = Report(confirmed, outputs, senders={"P"},
                    valid_payload=lambda payload: payload.startswith("r") and payload[1:].replace("-", "", 1).isdigit(),
                    rejection=rejection, dead_letters=letters, drain=drained)
    ctx.notes.append(f"{runs['p']} producer and {runs['c']} consumer runs")
    summary = drained["summary"]
    if summary:
        earlier = f" (+{drained['rejected_earlier']} by earlier runs)" if "rejected_earlier" in drained else ""
        ctx.notes.append(f"drain: {summary['processed']} processed, {summary['rejected']} rejected{earlier}"
                         f" of {(status_before or {}).get('pending')} pending, exit {code};"
                         f" dead letters {len(letters_before or [])} -> {len(letters or [])}"
                         f" (summary read as {drained.get('reading', 'neither')})")
    if not confirmed:
        problems.append("the producer confirmed nothing")
    return report, problems
