"""Process handling, scratch directories and small helpers shared by the chaos scenarios."""
import os
import random
import signal
import socket
import subprocess
import sys
import time


class Skip(Exception):
    """A scenario cannot run here (not root, a missing tool); the message says why."""


class Context:
    """One scenario run: its seed, duration, scratch directory and the processes it started."""

    def __init__(self, name, seed, duration, ci, bin_dir, root, verbose=False):
        self.name = name
        self.seed = seed
        self.duration = duration
        self.ci = ci
        self.bin = bin_dir
        self.dir = os.path.join(root, f"{name}-{seed}")
        self.random = random.Random(seed)
        self.verbose = verbose
        self.faults = 0
        self.procs = []      # every Proc started, for the final clean-up
        self.notes = []      # extra facts for the report line
        self.cleanups = []   # callables run at the end (unmount, delete namespaces)
        os.makedirs(self.dir, exist_ok=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def program(self, name):
        return os.path.join(self.bin, name)

    def log(self, text):
        if self.verbose:
            print(f"  [{self.name} {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def progress(self, text):
        """A progress line on standard error when it is a terminal (SPEC §4)."""
        if sys.stderr.isatty() and not self.verbose:
            sys.stderr.write("\r\033[K" + f"{self.name}: {text}"[:150])
            sys.stderr.flush()

    def start(self, program, args, out, err, stdin=None, netns=None):
        """Starts one of the programs with its standard streams on files (stdin: a file or None)."""
        argv = [self.program(program)] + list(args)
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv   # ip execs the program: same pid
        proc = Proc(argv, self.path(out), self.path(err), stdin)
        self.procs.append(proc)
        self.log(f"started {program} {' '.join(args)} (pid {proc.pid})")
        return proc

    def spool(self, *args):
        """Runs courier-spool; returns (exit code, stdout)."""
        result = subprocess.run([self.program("courier-spool")] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        return result.returncode, result.stdout.decode("utf-8", "replace") + result.stderr.decode("utf-8", "replace")

    def sleep_random(self, low, high):
        time.sleep(self.random.uniform(low, high))

    def close(self):
        for proc in self.procs:
            proc.kill9()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:   # keep cleaning up
                print(f"chaos: clean-up in {self.name}: {error}", file=sys.stderr)


class Proc:
    def __init__(self, argv, out, err, stdin):
        self.argv = argv
        self.out = out
        self.err = err
        stdin_handle = open(stdin, "rb") if stdin else subprocess.DEVNULL
        with open(out, "wb") as stdout_handle, open(err, "wb") as stderr_handle:
            self.popen = subprocess.Popen(argv, stdin=stdin_handle, stdout=stdout_handle, stderr=stderr_handle)
        if stdin:
            stdin_handle.close()
        self.pid = self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def signal(self, number):
        if self.running():
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:
                pass

    def kill9(self):
        """SIGKILL, then wait until it is gone."""
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def wait(self, timeout):
        """The exit code (128 + n when killed by signal n), or None after `timeout` seconds."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return 128 - code if code < 0 else code

    def stop(self, timeout=20):
        """SIGTERM (a graceful stop), SIGKILL if that takes longer than `timeout`."""
        self.signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.kill9()
            return None
        return code

    def rss_kib(self):
        return rss_kib(self.pid)

    def stderr_text(self):
        return read_text(self.err)


def rss_kib(pid):
    """VmRSS of a process in KiB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def complete_lines(path):
    """The lines of a file that end in a newline (a process killed mid-write may leave part of one)."""
    text = read_text(path)
    lines = text.split("\n")
    lines.pop()   # after the last newline: empty, or a torn line
    return lines


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_lines(path, lines):
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as docs/PROTOCOL.md and docs/SPOOL-FORMAT.md use."""
    table = _crc_table()
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_TABLE = []


def _crc_table():
    if not _TABLE:
        for n in range(256):
            c = n
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _TABLE.append(c)
    return _TABLE


assert crc32c(b"123456789") == 0xE3069283
