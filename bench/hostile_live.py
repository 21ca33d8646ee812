"""The live side of the hostile-input bench: a swimguard cluster as real processes, watched.

`LiveCluster` starts `python -m swimguard agent` processes with the cluster benchmark's own
helpers (`bench.cluster_bench.Cluster`, `bench.procs`), keeps each agent's event lines
(with incarnations), and stops them gracefully so each prints its final drop counters.
`Watch` samples, while an attack runs, what an operator would look at from outside:
RSS of every agent (psutil), TCP connections held by the attacked agent, and a UDP
pinger whose acks show how long the attacked agent's loop was unable to answer.

What an agent tells from outside today (read here, nothing else is needed from src/):
- stdout: JSON membership events (`member-join`, `-failed`, `-suspect`, ...);
- stderr: every `drop_log_interval` (10 s) a warning with the per-reason deltas, and at a
  graceful exit (SIGTERM) one INFO line `dropped input by reason: {...}` (JSON) with the totals;
  exceptions caught by the driver are logged as `protocol core raised on input` with a
  traceback (and counted as drop reason `internal_error`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.cluster_bench import BenchError, Cluster, SwimguardKind
from bench.procs import LOOPBACK, Children
from swimguard.wire import (
    AckResp,
    DecodeError,
    Keyring,
    Ping,
    decode_packet,
    encode_message,
    encode_packet,
)

ATTACKED = 0  # member index of the attacked agent (also the seed the others join)
JOINER = 3  # member index of the agent that joins through the attacked one afterwards


class HostileKind(SwimguardKind):
    """`python -m swimguard agent`, events parsed with their incarnation."""

    def parse_full(self, line: str) -> tuple[str, str, int | None] | None:
        """(event, subject, incarnation) of one stdout line, or None."""
        if not line.startswith("{"):
            return None
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        event, name = obj.get("event"), obj.get("name")
        if not isinstance(event, str) or not isinstance(name, str):
            return None
        if not event.startswith("member-"):
            return None
        inc = obj.get("incarnation")
        return event[7:], name, inc if isinstance(inc, int) else None


class _Cluster(Cluster):
    """`Cluster` that also keeps each member's latest known incarnation per observer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.incarnations: dict[tuple[str, str], int] = {}  # (observer, subject) -> inc

    def _on_line(self, key: str, line: str, ts: float) -> None:
        super()._on_line(key, line, ts)
        kind = self.kind
        assert isinstance(kind, HostileKind)
        parsed = kind.parse_full(line)
        if parsed is None:
            return
        _event, subject, inc = parsed
        with self.cond:
            agent = self.by_key.get(key)
            if agent is not None and inc is not None:
                self.incarnations[(agent.name, subject)] = inc


# --------------------------------------------------------------------------- drops


_FINAL_DROPS = re.compile(r"dropped input by reason: (\{.*\})\s*$")
_PERIODIC_DROPS = re.compile(r"dropped input in the last \d+s: (.*)$")
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))(?::\s?(.*))?$")
_INTERNAL = ("protocol core raised on input", "error while draining the protocol core")


@dataclass
class StderrReport:
    """What one agent's stderr log says about its drops and errors."""

    final_drops: dict[str, int] | None  # the totals line printed at a graceful exit
    periodic_drops: dict[str, int]  # sum of the periodic deltas (10 s resolution)
    internal_errors_logged: int
    exceptions: dict[str, int]  # "Type: message" (shortened) -> count
    fatal: list[str]  # lines that look like a crash or a failed start/join

    @property
    def drops(self) -> dict[str, int]:
        """The best totals available: the final line, else the periodic sums."""
        return self.final_drops if self.final_drops is not None else self.periodic_drops


def read_stderr(path: Path) -> StderrReport:
    """Parse an agent's stderr log (see the module docstring for what it holds)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        text = ""
    final: dict[str, int] | None = None
    periodic: dict[str, int] = {}
    internal = 0
    exceptions: dict[str, int] = {}
    fatal: list[str] = []
    for line in text.splitlines():
        m = _FINAL_DROPS.search(line)
        if m:
            with contextlib.suppress(ValueError):
                value = json.loads(m.group(1))
                if isinstance(value, dict):
                    final = {str(k): int(v) for k, v in value.items()}
            continue
        m = _PERIODIC_DROPS.search(line)
        if m:
            for item in m.group(1).split(", "):
                reason, _, n = item.rpartition("=")
                if reason and n.isdigit():
                    periodic[reason] = periodic.get(reason, 0) + int(n)
            continue
        if any(s in line for s in _INTERNAL):
            internal += 1
            continue
        m = _EXC_LINE.match(line.strip())
        if m:
            key = f"{m.group(1)}: {(m.group(2) or '')[:90]}"
            exceptions[key] = exceptions.get(key, 0) + 1
            continue
        if "cannot start" in line or "join failed" in line or "Traceback" in line:
            fatal.append(line[-200:])
    return StderrReport(final, periodic, internal, exceptions, fatal[:5])


def kernel_udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to `port` (full buffer)."""
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) >= 13 and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    total += int(cols[-1])
    return total


# --------------------------------------------------------------------------- cluster


class LiveCluster:
    """`members` agents (plus room for a joiner) started as real processes on 127.0.0.1."""

    def __init__(
        self,
        kids: Children,
        run_dir: Path,
        *,
        members: int = 3,
        key_b64: str | None = None,
        profile: str = "lan",
        python: str = sys.executable,
    ) -> None:
        extra = ["--profile", profile]
        if key_b64:
            extra += ["--encrypt", key_b64]
        kind = HostileKind(python, extra)
        kind.label = "swimguard"
        self.kind = kind
        self.members = members
        self.keyring = Keyring([__import__("base64").b64decode(key_b64)]) if key_b64 else None
        self.cluster = _Cluster(kind, kids, run_dir, members + 1)
        self.run_dir = run_dir
        self.stopping_at: float | None = None
        self.exit_codes: dict[str, int | None] = {}

    # -- names and addresses

    @property
    def names(self) -> list[str]:
        """Member names, the joiner's last."""
        return self.cluster.names

    @property
    def attacked(self) -> str:
        """The attacked agent's name (member 0, the seed)."""
        return self.names[ATTACKED]

    @property
    def joiner(self) -> str:
        """The agent started after the attack, joining through the attacked one."""
        return self.names[JOINER]

    def addr(self, name: str) -> tuple[str, int]:
        """UDP/TCP address of member `name`."""
        return LOOPBACK, self.cluster.ports[self.names.index(name)]

    def pid(self, name: str) -> int:
        """Process id of member `name`."""
        return self.cluster.agents[name].proc.pid

    def running(self) -> list[str]:
        """Names of the agents started so far."""
        return [n for n in self.names if n in self.cluster.agents]

    # -- lifecycle

    def start(self, timeout: float = 60.0) -> None:
        """Start member 0, then the others joining it; wait until every view is whole."""
        c = self.cluster
        seed = c.spawn(ATTACKED)
        c.expect([self.attacked])
        c.wait(lambda: seed.self_join_at is not None, timeout, "attacked agent up")
        for i in range(1, self.members):
            c.spawn(i)
        c.expect(self.names[: self.members])
        c.wait(lambda: c.converged_at is not None, timeout, "cluster convergence")

    def crashed(self) -> dict[str, int]:
        """Agents that exited on their own (before `stop`): name -> exit code."""
        if self.stopping_at is not None:
            return {}
        return {
            n: a.proc.returncode
            for n, a in self.cluster.agents.items()
            if a.proc.poll() is not None
        }

    def join_through_attacked(self, timeout: float) -> dict[str, Any]:
        """Start the joiner with `--join <attacked>` and wait until both list each other.

        Ends on the first of: both agents reported the other's join (success), the joiner
        exited (the CLI exits 1 when its join fails), or `timeout` (a safety net only).
        """
        c = self.cluster
        t0 = time.time()
        joiner = c.spawn(JOINER)
        attacked = c.agents[self.attacked]
        outcome = "timeout"

        def done() -> bool:
            nonlocal outcome
            a_sees = any(
                ev in ("join", "update") and s == self.joiner for _, ev, s in attacked.events
            )
            j_sees = any(
                ev in ("join", "update") and s == self.attacked for _, ev, s in joiner.events
            )
            if a_sees and j_sees:
                outcome = "joined"
                return True
            if joiner.proc.poll() is not None:
                outcome = f"joiner exited {joiner.proc.returncode}"
                return True
            if attacked.proc.poll() is not None:
                outcome = "attacked agent exited"
                return True
            return False

        deadline = time.monotonic() + timeout
        with c.cond:
            while not done() and time.monotonic() < deadline:
                c.cond.wait(0.25)
        return {
            "ok": outcome == "joined",
            "outcome": outcome,
            "seconds": round(time.time() - t0, 3),
            "joiner_stderr_tail": "" if outcome == "joined" else c.stderr_tail(self.joiner, 300),
        }

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every agent (graceful leave, final drop counters), SIGKILL stragglers."""
        self.stopping_at = time.time()
        procs = {n: a.proc for n, a in self.cluster.agents.items()}
        for name, proc in procs.items():
            if proc.poll() is None:
                self.cluster.kids.kill(proc, signal.SIGTERM)
            else:
                self.exit_codes[name] = proc.returncode
        deadline = time.monotonic() + grace
        for name, proc in procs.items():
            if name in self.exit_codes:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                self.exit_codes[name] = proc.returncode
            except subprocess.TimeoutExpired:
                self.exit_codes[name] = None  # hung at exit
                self.cluster.kids.kill(proc)
        self.cluster.close()

    # -- events

    def events(self, since: float = 0.0) -> list[tuple[str, float, str, str]]:
        """(observer, ts, event, subject) of every event at or after `since`."""
        return self.cluster.events_since(since)

    def incarnation(self, observer: str, subject: str) -> int:
        """The latest incarnation `observer` reported for `subject` (0 if none)."""
        with self.cluster.cond:
            return self.cluster.incarnations.get((observer, subject), 0)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (event-driven) until `predicate()` holds under the cluster lock."""
        deadline = time.monotonic() + timeout
        with self.cluster.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cluster.cond.wait(min(left, 0.25))
        return True

    def views_whole(self, names: Sequence[str]) -> bool:
        """True when each of `names` currently lists all of `names` alive (under the lock)."""
        want = set(names)
        for n in names:
            agent = self.cluster.agents.get(n)
            if agent is None:
                return False
            if {s for s, st in agent.view.items() if st == "alive"} & want != want:
                return False
        return True

    def stderr(self, name: str) -> StderrReport:
        """Parsed stderr log of agent `name`."""
        return read_stderr(self.run_dir / f"{name}.stderr")


# --------------------------------------------------------------------------- watch


@dataclass
class PingStats:
    """UDP pings the bench sent to the attacked agent and the acks it got back.

    An ack later than `probe_timeout` (memberlist's 0.5 s on lan) is what a member probing
    the agent would count as a failed probe, so `missed` counts those and the never-acked.
    """

    probe_timeout: float = 0.5
    sent: int = 0
    rtts: list[float] = field(default_factory=list)  # every ack, however late
    acks_at: list[float] = field(default_factory=list)  # monotonic arrival times
    started: float = 0.0
    ended: float = 0.0

    def longest_silence(self) -> float:
        """Longest time without any ack (pings go out every 0.1 s): how long the agent
        could not answer, whether its loop was blocked or its input queue full."""
        marks = [self.started, *self.acks_at, self.ended]
        return max((b - a for a, b in itertools.pairwise(marks)), default=0.0)

    def summary(self) -> dict[str, Any]:
        """Counts and RTT figures (max RTT: the longest an answer was held up)."""
        r = sorted(self.rtts)
        late = sum(1 for x in r if x > self.probe_timeout)
        return {
            "sent": self.sent,
            "never_acked": self.sent - len(r),
            "missed": self.sent - len(r) + late,
            "acked_later_than_probe_timeout": late,
            "probe_timeout_s": self.probe_timeout,
            "rtt_ms_median": round(1000 * r[len(r) // 2], 2) if r else None,
            "rtt_ms_p99": round(1000 * r[min(len(r) - 1, int(len(r) * 0.99))], 2) if r else None,
            "rtt_ms_max": round(1000 * r[-1], 2) if r else None,
            "longest_silence_s": round(self.longest_silence(), 2),
        }


class Watch:
    """Samples RSS, TCP connections and ping RTTs of the cluster while an attack runs."""

    def __init__(
        self,
        live: LiveCluster,
        *,
        period: float = 0.1,
        ping_every: float = 0.1,
        probe_timeout: float = 0.5,
    ) -> None:
        self.live = live
        self.period = period
        self.ping_every = ping_every
        self.drain = 2.0  # seconds left for late acks after the watch ends
        self.rss: dict[str, list[tuple[float, int]]] = {n: [] for n in live.running()}
        self.conns_max = 0
        self.pings = PingStats(probe_timeout=probe_timeout)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._procs = {n: psutil.Process(live.pid(n)) for n in live.running()}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((LOOPBACK, 0))
        self._sock.settimeout(0.2)
        self._sent_at: dict[int, float] = {}
        self._lock = threading.Lock()

    def rss_now(self) -> dict[str, int]:
        """Current RSS of each watched agent (bytes; 0 when gone)."""
        out = {}
        for name, p in self._procs.items():
            try:
                out[name] = int(p.memory_info().rss)
            except psutil.Error:
                out[name] = 0
        return out

    def __enter__(self) -> Watch:
        self.pings.started = time.monotonic()
        for target in (self._sample, self._ping, self._acks):
            t = threading.Thread(target=target, daemon=True, name=f"watch-{target.__name__}")
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(self.drain)  # let the last (late) acks arrive
        self._stop.set()
        self.pings.ended = time.monotonic()
        for t in self._threads:
            t.join(timeout=5)
        self._sock.close()

    def _sample(self) -> None:
        attacked = self._procs.get(self.live.attacked)
        n = 0
        while not self._stop.is_set():
            now = time.time()
            for name, size in self.rss_now().items():
                self.rss[name].append((now, size))
            if attacked is not None and n % 5 == 0:
                with contextlib.suppress(psutil.Error):
                    conns = attacked.net_connections(kind="tcp")
                    held = sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED)
                    self.conns_max = max(self.conns_max, held)
            n += 1
            self._stop.wait(self.period)

    def _ping(self) -> None:
        live = self.live
        dest = live.addr(live.attacked)
        seq = 0
        while not self._stop.is_set():
            seq += 1
            payload = encode_message(Ping(seq_no=seq, node=live.attacked))
            data = encode_packet(payload, keyring=live.keyring) if live.keyring else payload
            with self._lock:
                self._sent_at[seq] = time.monotonic()
                self.pings.sent += 1
            with contextlib.suppress(OSError):
                self._sock.sendto(data, dest)
            self._stop.wait(self.ping_every)

    def _acks(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            try:
                messages = decode_packet(data, keyring=self.live.keyring)
            except DecodeError:
                continue
            for msg in messages:
                if isinstance(msg, AckResp):
                    with self._lock:
                        sent = self._sent_at.pop(msg.seq_no, None)
                        if sent is not None:
                            self.pings.acks_at.append(now)
                            self.pings.rtts.append(now - sent)

    def rss_figures(self, start: dict[str, int]) -> dict[str, dict[str, float]]:
        """Per agent: start, peak and latest RSS in MiB."""
        out = {}
        for name, samples in self.rss.items():
            peak = max((s for _, s in samples), default=0)
            last = samples[-1][1] if samples else 0
            out[name] = {
                "start_mib": round(start.get(name, 0) / 2**20, 1),
                "peak_mib": round(peak / 2**20, 1),
                "last_mib": round(last / 2**20, 1),
            }
        return out


__all__ = [
    "ATTACKED",
    "JOINER",
    "BenchError",
    "HostileKind",
    "LiveCluster",
    "PingStats",
    "StderrReport",
    "Watch",
    "kernel_udp_drops",
    "read_stderr",
]
