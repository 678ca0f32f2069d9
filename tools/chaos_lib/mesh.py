"""Scenario 2: a mesh of nodes in network namespaces, links cut and restored at random (some
cuts longer than the retransmission cap), processes killed too.

Each namespace i runs one consumer (id n<i>) and one producer per other namespace j
(id p<i>to<j>), so every namespace both sends and receives. Each pair of namespaces is joined
by its own veth pair with its own /30, so cutting one link (ip link set … down) separates
exactly that pair."""
import os
import subprocess
import time

from .check import Combined, Report, parse_consumer
from .common import Skip, complete_lines, write_lines

PORT = 7001


class Mesh:
    def __init__(self, ctx, nodes):
        self.ctx = ctx
        self.nodes = nodes
        self.prefix = f"cc{os.getpid() % 100000}"
        self.links = {}      # (i, j) -> (interface in i, interface in j)
        self.address = {}    # (i, j) -> address of j on the link i-j

    def ns(self, i):
        return f"{self.prefix}n{i}"

    def ip(self, *args, netns=None):
        command = (["ip", "netns", "exec", netns] if netns else []) + ["ip"] + list(args)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def create(self):
        self.ctx.cleanups.append(self.destroy)
        for i in range(self.nodes):
            subprocess.run(["ip", "netns", "add", self.ns(i)], check=True)
            self.ip("link", "set", "lo", "up", netns=self.ns(i))
        pair = 0
        for i in range(self.nodes):
            for j in range(i + 1, self.nodes):
                a, b = f"{self.prefix}{i}{j}", f"{self.prefix}{j}{i}"
                self.ip("link", "add", a, "type", "veth", "peer", "name", b)
                self.ip("link", "set", a, "netns", self.ns(i))
                self.ip("link", "set", b, "netns", self.ns(j))
                self.ip("addr", "add", f"10.231.{pair}.1/30", "dev", a, netns=self.ns(i))
                self.ip("addr", "add", f"10.231.{pair}.2/30", "dev", b, netns=self.ns(j))
                self.ip("link", "set", a, "up", netns=self.ns(i))
                self.ip("link", "set", b, "up", netns=self.ns(j))
                self.links[(i, j)] = (a, b)
                self.address[(i, j)] = f"10.231.{pair}.2"   # j, seen from i
                self.address[(j, i)] = f"10.231.{pair}.1"   # i, seen from j
                pair += 1

    def set_link(self, pair, up):
        i, j = pair
        a, _ = self.links[pair]
        self.ip("link", "set", a, "up" if up else "down", netns=self.ns(i))

    def destroy(self):
        for i in range(self.nodes):
            subprocess.run(["ip", "netns", "del", self.ns(i)], stderr=subprocess.DEVNULL)


def run(ctx):
    if os.geteuid() != 0:
        raise Skip("needs root for ip netns and veth pairs (run as root, or in a container with CAP_NET_ADMIN)")
    nodes = 3
    mesh = Mesh(ctx, nodes)
    try:
        mesh.create()
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        detail = getattr(error, "stderr", b"") or b""
        raise Skip(f"cannot create network namespaces here: {error} {detail.decode(errors='replace').strip()}")
    rate = 40 if ctx.ci else 100
    long_cut = 12.0 if not ctx.ci else 3.0      # beyond the 10 s retransmission cap (CI: short)
    runs = {}                                   # name -> run count
    procs = {}
    problems = []

    def start_consumer(i):
        name = f"n{i}"
        runs[name] = runs.get(name, 0) + 1
        procs[name] = ctx.start("courier-consumer", ["--id", name, "--data-dir", ctx.path(name), "--listen", f"tcp://*:{PORT}"],
                                f"{name}-{runs[name]}.out", f"{name}-{runs[name]}.err", netns=mesh.ns(i))

    def peer_of(i, j):
        return f"n{j}=tcp://{mesh.address[(i, j)]}:{PORT}"

    def start_producer(i, j):
        name = f"p{i}to{j}"
        runs[name] = runs.get(name, 0) + 1
        n = runs[name]
        lines = [f"{name}-r{n}-{k}" for k in range(1, int(rate * (ctx.duration + 30)) + 1)]
        write_lines(ctx.path(f"{name}-{n}.in"), lines)
        procs[name] = ctx.start("courier-producer", ["--id", name, "--data-dir", ctx.path(name), "--peer", peer_of(i, j),
                                                     "--print-spooled", "--rate", str(rate), "--batch", "16"],
                                f"{name}-{n}.out", f"{name}-{n}.err", stdin=ctx.path(f"{name}-{n}.in"), netns=mesh.ns(i))

    pairs = [(i, j) for i in range(nodes) for j in range(nodes) if i != j]
    for i in range(nodes):
        start_consumer(i)
    for i, j in pairs:
        start_producer(i, j)

    cuts = {}          # link -> when it comes back
    longest = 0.0
    cut_count = kill_count = 0
    end = time.monotonic() + ctx.duration
    while time.monotonic() < end:
        ctx.sleep_random(0.2, 1.5)
        now = time.monotonic()
        for link, until in list(cuts.items()):
            if now >= until:
                mesh.set_link(link, True)
                del cuts[link]
        action = ctx.random.random()
        if action < 0.5:
            link = ctx.random.choice(list(mesh.links))
            if link not in cuts:
                # Mostly short cuts, some longer than the retransmission cap.
                duration = ctx.random.uniform(long_cut, long_cut * 1.5) if ctx.random.random() < 0.3 else ctx.random.uniform(0.2, 4.0 if not ctx.ci else 1.5)
                mesh.set_link(link, False)
                cuts[link] = now + duration
                longest = max(longest, duration)
                cut_count += 1
                ctx.faults += 1
        else:
            victim = ctx.random.choice([f"n{i}" for i in range(nodes)] + [f"p{i}to{j}" for i, j in pairs])
            procs[victim].kill9()
            kill_count += 1
            ctx.faults += 1
            ctx.sleep_random(0, 0.5)
            if victim.startswith("n"):
                start_consumer(int(victim[1:]))
            else:
                i, j = int(victim[1]), int(victim[4])
                start_producer(i, j)
        for name, proc in list(procs.items()):       # a producer that finished its input: restart
            if name.startswith("p") and not proc.running():
                code = proc.wait(1)
                if code != 0:
                    problems.append(f"{name} run {runs[name]} exited {code}: {proc.stderr_text()[-200:]}")
                start_producer(int(name[1]), int(name[4]))
        ctx.progress(f"{cut_count} cuts, {kill_count} kills, {len(cuts)} links down, {end - time.monotonic():.0f} s left")
    for link in list(cuts):
        mesh.set_link(link, True)
    for i, j in pairs:
        procs[f"p{i}to{j}"].kill9()
    # Drain every producer at once, each from its own namespace.
    drains = {}
    for i, j in pairs:
        name = f"p{i}to{j}"
        drains[name] = ctx.start("courier-producer", ["--id", name, "--data-dir", ctx.path(name), "--peer", peer_of(i, j), "--wait"],
                                 f"{name}-drain.out", f"{name}-drain.err", netns=mesh.ns(i))
    deadline = time.monotonic() + 180
    for name, proc in drains.items():
        code = proc.wait(max(1, deadline - time.monotonic()))
        if code != 0:
            problems.append(f"the drain of {name} exited {code}: {proc.stderr_text()[-200:]}")
            proc.kill9()
    reports = []
    for i in range(nodes):
        name = f"n{i}"
        if procs[name].stop() != 0:
            problems.append(f"consumer {name} did not stop cleanly")
        senders = {f"p{k}to{i}" for k in range(nodes) if k != i}
        confirmed = []
        for sender in senders:
            for n in range(1, runs[sender] + 1):
                confirmed += complete_lines(ctx.path(f"{sender}-{n}.out"))
        outputs = [parse_consumer(ctx.path(f"{name}-{n}.out")) for n in range(1, runs[name] + 1)]
        reports.append(Report(confirmed, outputs, senders=senders,
                              valid_payload=lambda payload: payload.startswith("p") and "-r" in payload))
    ctx.notes.append(f"{nodes} namespaces, {cut_count} link cuts (longest {longest:.1f} s), {kill_count} kills")
    return Combined(reports), problems
