"""Scenario 6: hostile network input.

A relay (ZeroMQ ROUTER in front, DEALER behind) sits between a real producer Q and the
consumer and captures Q's real frames (HELLO, DATA) while passing everything through. An
attacker (DEALERs under other ids) replays those frames mutated — bit flips, truncation,
extension, wrong lengths with a fixed-up CRC, duplicates, dropped HELLOs, many parts, huge
frames, garbage — into the live consumer, while another real producer P sends to it directly.
The consumer must stay up with bounded memory, P's and Q's streams must be intact, and
whatever the attacker gets delivered under its own id must be a payload Q really sent
(nothing corrupt surfaces)."""
import os
import struct
import subprocess
import sys
import threading
import time

from .check import Report, parse_consumer
from .common import Skip, complete_lines, crc32c, free_port, write_lines

MIB = 1024


def load_zmq():
    try:
        import zmq  # noqa: F401
    except ImportError:
        print("chaos: installing pyzmq (pip install pyzmq) for the hostile scenario", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pyzmq"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise Skip("needs pyzmq and `pip install pyzmq` failed: " + result.stdout.decode(errors="replace")[-200:])
    import zmq
    return zmq


class Relay(threading.Thread):
    """Passes frames between Q (on the ROUTER side) and the consumer (behind the DEALER, whose
    routing id is Q's), keeping copies of what Q sends."""

    def __init__(self, zmq, front, back, identity):
        super().__init__(daemon=True)
        self.zmq = zmq
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(front)
        self.dealer = self.context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.ROUTING_ID, identity)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(back)
        self.identity = identity
        self.captured = []
        self.lock = threading.Lock()
        self.stopping = False

    def run(self):
        poller = self.zmq.Poller()
        poller.register(self.router, self.zmq.POLLIN)
        poller.register(self.dealer, self.zmq.POLLIN)
        while not self.stopping:
            for socket, _ in poller.poll(100):
                if socket is self.router:
                    parts = self.router.recv_multipart()
                    if len(parts) == 2:
                        frame = parts[1]
                        with self.lock:
                            if len(self.captured) < 2000 and len(frame) >= 4 and frame[3] in (1, 3):
                                self.captured.append(frame)
                        self.dealer.send(frame)
                else:
                    frame = self.dealer.recv()
                    try:
                        self.router.send_multipart([self.identity, frame], flags=self.zmq.NOBLOCK)
                    except self.zmq.ZMQError:
                        pass   # Q is not connected right now: it will HELLO again
        self.router.close()
        self.dealer.close()
        self.context.term()

    def frames(self):
        with self.lock:
            return list(self.captured)


def fix_crc(frame):
    body = frame[:-4] if len(frame) >= 4 else frame
    return body + struct.pack("<I", crc32c(body))


class Attacker:
    def __init__(self, zmq, ctx, endpoint):
        self.zmq = zmq
        self.ctx = ctx
        self.endpoint = endpoint
        self.context = zmq.Context()
        self.sockets = []
        self.sent = 0
        self.kinds = {}
        for identity in (b"X", b"Y"):
            self.sockets.append(self.dealer(identity))

    def dealer(self, identity):
        socket = self.context.socket(self.zmq.DEALER)
        socket.setsockopt(self.zmq.ROUTING_ID, identity)
        socket.setsockopt(self.zmq.LINGER, 0)
        socket.setsockopt(self.zmq.SNDHWM, 1000)
        socket.connect(self.endpoint)
        return socket

    def send(self, socket, parts):
        try:
            socket.send_multipart(parts, flags=self.zmq.NOBLOCK)
            self.sent += 1
        except self.zmq.ZMQError:
            pass
        while True:   # drain the consumer's answers (WELCOME, ACK) so nothing piles up here
            try:
                socket.recv(flags=self.zmq.NOBLOCK)
            except self.zmq.ZMQError:
                break

    def attack(self, frames):
        r = self.ctx.random
        frame = bytearray(r.choice(frames))
        socket = r.choice(self.sockets)
        kind = r.choice(["flip", "flip_crc", "truncate", "truncate_crc", "extend", "extend_crc", "lengths",
                         "duplicate", "drop_hello", "many_parts", "huge", "garbage", "empty", "header", "replay"])
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.ctx.faults += 1
        if kind in ("flip", "flip_crc"):
            for _ in range(r.randrange(1, 9)):
                frame[r.randrange(len(frame))] ^= 1 << r.randrange(8)
            self.send(socket, [bytes(fix_crc(frame) if kind == "flip_crc" else frame)])
        elif kind in ("truncate", "truncate_crc"):
            cut = frame[:r.randrange(len(frame))]
            self.send(socket, [bytes(fix_crc(cut) if kind == "truncate_crc" and len(cut) > 4 else cut)])
        elif kind in ("extend", "extend_crc"):
            longer = frame + os.urandom(r.randrange(1, 200))
            self.send(socket, [bytes(fix_crc(longer) if kind == "extend_crc" else longer)])
        elif kind == "lengths" and frame[3] == 3 and len(frame) > 14 + 25:
            # Record count, a payload length, sequence or attempt set wrong; the CRC made right.
            field = r.choice([(12, "<H"), (14 + 21, "<I"), (14, "<Q"), (14 + 8, "<I"), (14 + 13, "<q")])
            value = r.choice([0, 1, 2, 4097, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, r.randrange(1 << 16)])
            try:
                struct.pack_into(field[1], frame, field[0], value)
            except struct.error:
                struct.pack_into(field[1], frame, field[0], 0)
            self.send(socket, [bytes(fix_crc(frame))])
        elif kind == "duplicate":
            for _ in range(r.randrange(2, 20)):
                self.send(socket, [bytes(frame)])
        elif kind == "drop_hello":
            # DATA from an id that never said HELLO (its HELLO was dropped).
            data = [f for f in frames if f[3] == 3] or frames
            fresh = self.dealer(f"Z{r.randrange(1000)}".encode())
            self.send(fresh, [bytes(r.choice(data))])
            time.sleep(0.01)
            fresh.close()
        elif kind == "many_parts":
            self.send(socket, [bytes(frame)] * r.randrange(2, 300))
        elif kind == "huge":
            size = r.choice([(1 << 20) + 1, 2 << 20, 8 << 20])
            huge = bytearray(os.urandom(size))
            huge[0:4] = frame[0:4]   # a Courier header, then random bytes (no CRC: it is refused by size first)
            self.send(socket, [bytes(huge)])
        elif kind == "garbage":
            self.send(socket, [os.urandom(r.randrange(1, 2000))])
        elif kind == "empty":
            self.send(socket, [b""])
        elif kind == "header":
            frame[r.choice([0, 1, 2, 3])] = r.randrange(256)
            self.send(socket, [bytes(fix_crc(frame))])
        else:
            self.send(socket, [bytes(frame)])   # a faithful replay under another id

    def close(self):
        for socket in self.sockets:
            socket.close()
        self.context.term()


def run(ctx):
    zmq = load_zmq()
    consumer_port, relay_port = free_port(), free_port()
    consumer_endpoint = f"tcp://127.0.0.1:{consumer_port}"
    problems = []
    consumer = ctx.start("courier-consumer", ["--id", "C", "--data-dir", ctx.path("c"), "--listen", consumer_endpoint],
                         "c1.out", "c1.err")
    relay = Relay(zmq, f"tcp://127.0.0.1:{relay_port}", consumer_endpoint, b"Q")
    relay.start()
    rate = 100 if ctx.ci else 300
    total = int(rate * (ctx.duration + 60))
    producers = {}
    for name, endpoint in (("P", consumer_endpoint), ("Q", f"tcp://127.0.0.1:{relay_port}")):
        write_lines(ctx.path(f"{name}.in"), [f"{name.lower()}-{n}" for n in range(1, total + 1)])
        producers[name] = (endpoint, ctx.start("courier-producer", ["--id", name, "--data-dir", ctx.path(name.lower()),
                                                                    "--peer", f"C={endpoint}", "--print-spooled",
                                                                    "--rate", str(rate), "--batch", "16"],
                                               f"{name}.out", f"{name}.err", stdin=ctx.path(f"{name}.in")))
    deadline = time.monotonic() + 20
    while not relay.frames() and time.monotonic() < deadline:
        time.sleep(0.1)
    frames = relay.frames()
    if not frames:
        problems.append("the relay captured no frame from the real producer Q")
        frames = [b"CR\x01\x01" + bytes(28)]
    attacker = Attacker(zmq, ctx, consumer_endpoint)
    samples = []
    end = time.monotonic() + ctx.duration
    last_sample = 0.0
    while time.monotonic() < end:
        frames = relay.frames() or frames
        attacker.attack(frames)
        time.sleep(0.004 if ctx.ci else 0.001)
        if time.monotonic() - last_sample > 0.25:
            last_sample = time.monotonic()
            value = consumer.rss_kib()
            if value:
                samples.append(value)
            if not consumer.running():
                break
            ctx.progress(f"{attacker.sent} hostile messages, consumer RSS {value} KiB")
    attacker.close()
    if not consumer.running():
        problems.append(f"the consumer died under attack (exit {consumer.wait(1)}): {consumer.stderr_text()[-300:]}")
    if samples:
        warm = samples[min(len(samples) - 1, 4)]
        peak = max(samples)
        ctx.notes.append(f"{attacker.sent} hostile messages; consumer RSS {warm // MIB}->{peak // MIB} MiB")
        if peak - warm > 64 * MIB:
            problems.append(f"consumer RSS grew from {warm // MIB} to {peak // MIB} MiB under attack")
    # The real streams: stop the producers, drain both (Q still through the relay).
    for name, (endpoint, proc) in producers.items():
        proc.kill9()
    for name, (endpoint, _) in producers.items():
        drain = ctx.start("courier-producer", ["--id", name, "--data-dir", ctx.path(name.lower()), "--peer", f"C={endpoint}", "--wait"],
                          f"{name}-drain.out", f"{name}-drain.err")
        code = drain.wait(120)
        if code != 0:
            problems.append(f"the drain of {name} exited {code}: {drain.stderr_text()[-300:]}")
            drain.kill9()
    relay.stopping = True
    relay.join(5)
    if consumer.running() and consumer.stop() != 0:
        problems.append("the consumer did not stop cleanly")
    confirmed = complete_lines(ctx.path("P.out")) + complete_lines(ctx.path("Q.out"))
    output = parse_consumer(ctx.path("c1.out"))
    real_q = set(complete_lines(ctx.path("Q.in")))
    # Without security any peer may send messages under its own id. What reaches the
    # application under an attacker's id is either a faithful replay of Q's frames or a
    # frame the attacker changed and re-sealed with a correct CRC-32C ("flip_crc",
    # "lengths", "extend_crc", …): a message the attacker authored, valid on the wire. Both
    # are counted; they can never appear in P's or Q's streams, which the report below checks
    # (order, duplicates, and payloads of the form P and Q send).
    foreign = [m for m in output if m.get("from") not in ("P", "Q")]
    authored = [m for m in foreign if m.get("payload") not in real_q]
    ctx.notes.append(f"{len(foreign) - len(authored)} faithful replays and {len(authored)} re-sealed (attacker-authored) "
                     f"messages delivered under the attacker's ids")
    report = Report(confirmed, [output], senders={"P", "Q"},
                    valid_payload=lambda payload: payload[:2] in ("p-", "q-") and payload[2:].isdigit())
    return report, problems
