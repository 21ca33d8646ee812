"""Process and measurement helpers for the cluster benchmarks.

Everything here is about running many agent processes on 127.0.0.1 and measuring them:
free ports, spawning each child in its own process group (so a SIGKILL reaches any
helpers it forked, and a Ctrl-C on the bench never leaks a child), reading every
child's stdout lines with arrival timestamps from one thread, and sampling CPU/RSS with
psutil over an idle window.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

import psutil

LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- ports


def _port_free(host: str, port: int) -> bool:
    """True when `port` can be bound on `host` for both TCP and UDP right now."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_ports(count: int, host: str = LOOPBACK, exclude: Sequence[int] = ()) -> list[int]:
    """Return `count` distinct ports free for both TCP and UDP on `host`.

    Agents bind UDP and TCP on the same port, so both must be free. The kernel picks
    candidates (bind to port 0); a port is only reserved until this returns, which is
    good enough on a loopback test box.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    chosen: list[int] = []
    taken = set(exclude)
    attempts = 0
    while len(chosen) < count:
        attempts += 1
        if attempts > 100 * (count + 1):
            raise RuntimeError(f"could not find {count} free TCP+UDP ports on {host}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port in taken or not _port_free(host, port):
            continue
        taken.add(port)
        chosen.append(port)
    return chosen


def wait_tcp_listening(host: str, port: int, timeout: float) -> bool:
    """Poll until a TCP connect to (host, port) succeeds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------- children


class Children:
    """Owns every child process a benchmark starts and kills them all on exit.

    Each child gets its own session (so its own process group): killing the group also
    kills whatever it forked (e.g. serf event handlers), and the terminal's Ctrl-C reaches
    only the bench, whose `finally`/`__exit__` then kills the groups. SIGTERM and SIGHUP
    on the bench are turned into KeyboardInterrupt while the context is active so the
    same cleanup runs.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> Children:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_all()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    @staticmethod
    def _on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def spawn(
        self,
        argv: Sequence[str],
        *,
        stdout: int | IO[Any] | None = subprocess.PIPE,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a new process group and remember it for cleanup."""
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        with self._lock:
            self._procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the child's whole process group (no error if already gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every child's process group and reap them."""
        with self._lock:
            procs = list(self._procs)
            self._procs.clear()
        for proc in procs:
            self.kill(proc)
        deadline = time.monotonic() + timeout
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            if proc.stdout is not None:
                with contextlib.suppress(OSError):
                    proc.stdout.close()

    @property
    def live(self) -> list[subprocess.Popen[bytes]]:
        """Children not yet reaped as exited."""
        with self._lock:
            return [p for p in self._procs if p.poll() is None]


# --------------------------------------------------------------------------- line reader

LineCallback = Callable[[str, str, float], None]


class LineReader:
    """Reads lines from many child pipes in one thread, stamping each on arrival.

    `callback(key, line, arrival_unix_time)` runs on the reader thread for every complete
    line (without the newline). Arrival time is the reference clock for every event in
    the benchmark, for both cluster types, so delivery delays are alike.
    """

    def __init__(self, callback: LineCallback) -> None:
        self._callback = callback
        self._sel = selectors.DefaultSelector()
        self._pending: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="line-reader", daemon=True)
        self._thread.start()

    def add(self, key: str, pipe: IO[bytes]) -> None:
        """Start reading `pipe`; lines are reported under `key`."""
        fd = pipe.fileno()
        os.set_blocking(fd, False)
        with self._lock:
            self._pending[fd] = b""
            self._sel.register(fd, selectors.EVENT_READ, key)
        os.write(self._wake_w, b"x")

    def close(self) -> None:
        """Stop the reader thread and release its selector."""
        self._stop = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        while not self._stop:
            for skey, _ in self._sel.select(timeout=0.5):
                if skey.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                else:
                    self._read(int(skey.fd), str(skey.data))

    def _read(self, fd: int, key: str) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        now = time.time()
        with self._lock:
            data = self._pending.get(fd, b"") + chunk
            if chunk:
                *lines, self._pending[fd] = data.split(b"\n")
            else:  # EOF: flush a last unterminated line
                self._sel.unregister(fd)
                self._pending.pop(fd, None)
                lines = [data] if data else []
        for raw in lines:
            self._callback(key, raw.decode("utf-8", "replace").rstrip("\r"), now)


# --------------------------------------------------------------------------- idle cost


@dataclass
class IdleSample:
    """CPU and memory of one process over an idle window."""

    pid: int
    cpu_percent: float  # of one core, over the window
    rss_samples: list[int] = field(default_factory=list)  # bytes

    @property
    def rss_median(self) -> float:
        """Median of the RSS samples (bytes), 0 if none."""
        return float(statistics.median(self.rss_samples)) if self.rss_samples else 0.0


@dataclass
class IdleWindow:
    """Result of `measure_idle`: one sample per process plus machine context."""

    seconds: float
    samples: list[IdleSample]
    loadavg_start: tuple[float, float, float]
    loadavg_end: tuple[float, float, float]
    system_cpu_percent: float  # whole machine, all cores (100 = all cores busy)
    lost_pids: list[int]


def _cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def measure_idle(
    pids: Sequence[int],
    seconds: float,
    rss_every: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> IdleWindow:
    """Measure CPU% (utime+stime delta / wall time) and RSS samples of `pids`.

    RSS is sampled at the start and every `rss_every` seconds; CPU is the difference of
    the kernel's counters over the whole window (10 ms tick, ~0.02 % at 60 s). A process
    that disappears during the window is reported in `lost_pids` instead of a sample.
    """
    procs = {pid: psutil.Process(pid) for pid in pids}
    load0 = os.getloadavg()
    psutil.cpu_percent(interval=None)  # prime the system-wide counter
    t0 = time.monotonic()
    cpu0 = {pid: _cpu_seconds(p) for pid, p in procs.items()}
    rss: dict[int, list[int]] = {pid: [] for pid in pids}
    lost: set[int] = set()

    def sample_rss() -> None:
        for pid, p in procs.items():
            if pid in lost:
                continue
            try:
                rss[pid].append(int(p.memory_info().rss))
            except psutil.NoSuchProcess:
                lost.add(pid)

    sample_rss()
    end = t0 + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        sleep(min(rss_every, end - now))
        if time.monotonic() < end - 0.5:
            sample_rss()
    elapsed = time.monotonic() - t0
    system_cpu = psutil.cpu_percent(interval=None)
    samples: list[IdleSample] = []
    for pid, p in procs.items():
        try:
            used = _cpu_seconds(p) - cpu0[pid]
        except psutil.NoSuchProcess:
            lost.add(pid)
            continue
        if pid in lost:
            continue
        samples.append(IdleSample(pid, 100.0 * used / elapsed, rss[pid]))
    return IdleWindow(elapsed, samples, load0, os.getloadavg(), system_cpu, sorted(lost))


# --------------------------------------------------------------------------- stats


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median, min, max and count of `values` (None entries when empty)."""
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "n": len(values),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


# --------------------------------------------------------------------------- serf


def ensure_serf(install: bool = True) -> str | None:
    """Path of the `serf` binary; installs Debian's package when missing and root.

    Returns None when serf is absent and cannot be installed (not root, or apt failed).
    """
    path = shutil.which("serf")
    if path or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "serf"],
    ):
        if subprocess.run(cmd, env=env, check=False, capture_output=True).returncode != 0:
            return None
    return shutil.which("serf")


def serf_version(binary: str) -> str:
    """First line of `serf version` (e.g. 'Serf v0.8.2-dev'), or '' if it fails."""
    try:
        out = subprocess.run(
            [binary, "version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0].strip() if out else ""


@contextlib.contextmanager
def children() -> Iterator[Children]:
    """`with children() as kids:` shorthand for `Children`."""
    with Children() as kids:
        yield kids
