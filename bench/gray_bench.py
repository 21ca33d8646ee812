"""Lifeguard on real processes: false declarations under injected gray failure (issue 15).

N members on 127.0.0.1, K of them slowed in-process (each with its own seed): during slow
episodes (`--slow-on` seconds, gaps `--slow-off`) every datagram and accepted stream they
receive waits Exp(`--slow-mean`) in one FIFO queue; their timers and output stay on time.
Variant (a): replies on streams a slowed member dials itself are on time; (b) with
`--slow-dialed` they are late too (the whole process reads late). Configurations, one
after another (never concurrently): Go memberlist 0.2.2 (`tools/mlnode`, same injection,
same schedule for the same seed) with Lifeguard and with it off (`-awareness-max 1
-suspicion-max-mult 1`; the buddy system has no switch), and swimguard's `Config.swim()`,
Lifeguard only (memberlist's rules) and default (`bench.gray_agent`).

Counted, from every member's event stream (arrival time at this process):
- false declarations: every `failed` event some member emits about a member that was not
  killed (or before it was), over the slow period;
- about never-slowed members, and about slowed ones split by what the declared member was
  doing: its input lag (how late it read a datagram, measured by this bench with a
  memberlist ping every second to each slowed member, acked as soon as the member reads it)
  stayed below the suspicion timeout that was used (declaration time minus the first
  suspicion of it in the window: it could have refuted, a true false positive), or did not
  (it was effectively unresponsive that long: a defensible declaration);
- detection of one real SIGKILL of a never-slowed member: first and last observer.

Run: `python -m bench.gray_bench [--small] [--configs ...] [--seeds 1,2] [--out DIR]`.
The full run (5 configurations x 2 variants x 2 seeds x 180 s) takes about an hour.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import LOOPBACK, Children, LineReader, free_ports
from swimguard.wire.messages import AckResp, Ping
from swimguard.wire.packet import decode_packet, encode_message

ROOT = Path(__file__).resolve().parent.parent
PING_PERIOD = 1.0
"""Seconds between two lag probes of one slowed member. Each ack carries piggybacked
gossip like any memberlist message, so probing spends a little of the slowed member's
broadcast budget on the bench, alike in every configuration: kept to one per second."""
DETECTION_WAIT = 45.0
"""Seconds after the kill the run may go on past its duration for every survivor to see it."""


@dataclass(frozen=True)
class Flavour:
    """One configuration: how to start a member and its suspicion timeouts."""

    name: str
    label: str
    go: bool
    extra: tuple[str, ...] = ()
    lifeguard_suspicion: bool = True

    def timeouts(self, members: int) -> tuple[float, float]:
        """Min and max suspicion timeout (LAN: mult 4, probe interval 1 s, max mult 6)."""
        low = 4.0 * max(1.0, math.log10(members)) * 1.0
        return low, (6.0 * low if self.lifeguard_suspicion else low)


FLAVOURS = {
    f.name: f
    for f in (
        Flavour("memberlist-nolg", "Go memberlist, Lifeguard off", True,
                ("-awareness-max", "1", "-suspicion-max-mult", "1"), lifeguard_suspicion=False),
        Flavour("memberlist", "Go memberlist, Lifeguard", True),
        Flavour("swim", "swimguard `Config.swim()`", False, ("--config", "swim"),
                lifeguard_suspicion=False),
        Flavour("lifeguard", "swimguard, Lifeguard only", False, ("--config", "lifeguard")),
        Flavour("default", "swimguard default", False, ("--config", "default")),
    )
}  # fmt: skip


@dataclass
class Params:
    members: int = 16
    slowed: int = 4
    duration: float = 180.0
    settle: float = 20.0
    kill_at: float = 0.6
    """Fraction of `duration` at which the victim is killed."""
    slow_on: tuple[float, float] = (5.0, 60.0)
    slow_off: tuple[float, float] = (10.0, 30.0)
    slow_mean: float = 2.0


@dataclass
class Run:
    """What one (configuration, variant, seed) run saw; times relative to the origin."""

    flavour: str
    dialed: bool
    seed: int
    params: dict[str, Any]
    slowed: list[str]
    victim: str
    ready: int = 0
    origin: float = 0.0
    kill_time: float | None = None
    events: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(t, observer, kind, subject)."""
    suspicions: list[tuple[float, str, str]] = field(default_factory=list)
    """(t, observer, subject): a member started or learned a suspicion."""
    toggles: list[tuple[float, str, bool, float]] = field(default_factory=list)
    """(t, member, slow, length) from the GRAY lines."""
    pings: list[tuple[str, float, float | None]] = field(default_factory=list)
    """(member, sent, acked or None)."""


# --------------------------------------------------------------------------- parsing

_EVENT = re.compile(r"^EVENT (join|failed|leave|update|suspect) (\S+)$")
_GRAY = re.compile(r"^GRAY (\S+) slow=(on|off) t=(\d+\.\d+) for=(\d+\.\d+)")
_SUSPECT_LOG = re.compile(r"memberlist: Suspect (\S+) has failed")


class _Recorder:
    """Turns every member's stdout/stderr lines into a `Run`'s records (reader thread)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.ready: set[str] = set()
        self.ready_event = threading.Event()
        self.expect_ready = 0

    def all_saw_failed(self, victim: str, survivors: int, since: float) -> bool:
        with self.lock:
            seen = {o for t, o, k, s in self.run.events
                    if k == "failed" and s == victim and t >= since}  # fmt: skip
        return len(seen) >= survivors

    def line(self, key: str, text: str, at: float) -> None:
        name, _, stream = key.partition(":")
        run = self.run
        with self.lock:
            if stream == "out":
                if text.startswith("READY "):
                    self.ready.add(name)
                    if len(self.ready) >= self.expect_ready:
                        self.ready_event.set()
                    return
                m = _EVENT.match(text)
                if m is None or m.group(2) == name:
                    return
                if m.group(1) == "suspect":
                    run.suspicions.append((at, name, m.group(2)))
                else:
                    run.events.append((at, name, m.group(1), m.group(2)))
                return
            m = _GRAY.match(text)
            if m is not None:
                run.toggles.append((float(m.group(3)), m.group(1), m.group(2) == "on",
                                    float(m.group(4))))  # fmt: skip
                return
            m = _SUSPECT_LOG.search(text)
            if m is not None:
                run.suspicions.append((at, name, m.group(1)))


class _Pinger:
    """Measures each slowed member's input lag: a memberlist ping every `PING_PERIOD`.

    Output is on time in the slowed member, so the ack leaves as soon as the ping is read:
    the round trip (well under a millisecond on loopback otherwise) is the lag."""

    def __init__(self, targets: dict[str, int]) -> None:
        self._targets = targets
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((LOOPBACK, 0))
        self._sock.settimeout(0.2)
        self._sent: dict[int, tuple[str, float]] = {}
        self.acks: dict[int, float] = {}
        self._stop = threading.Event()
        self._seq = 0
        self._threads = [threading.Thread(target=self._send_loop, daemon=True),
                         threading.Thread(target=self._recv_loop, daemon=True)]  # fmt: skip

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> list[tuple[str, float, float | None]]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._sock.close()
        return [(name, sent, self.acks.get(seq)) for seq, (name, sent) in self._sent.items()]

    def _send_loop(self) -> None:
        next_at = time.time()
        while not self._stop.is_set():
            for name, port in self._targets.items():
                self._seq = (self._seq + 1) & 0xFFFFFFFF
                data = encode_message(Ping(seq_no=self._seq, node=name))
                self._sent[self._seq] = (name, time.time())
                with contextlib.suppress(OSError):
                    self._sock.sendto(data, (LOOPBACK, port))
            next_at += PING_PERIOD
            self._stop.wait(max(0.0, next_at - time.time()))

    def _recv_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            now = time.time()
            try:  # acks come with piggybacked gossip (a compound) as often as not
                messages = decode_packet(data, errors=[])
            except Exception:  # anything undecodable is not an ack of ours
                continue
            for msg in messages:
                if isinstance(msg, AckResp) and msg.seq_no not in self.acks:
                    self.acks[msg.seq_no] = now


# --------------------------------------------------------------------------- running


def find_mlnode(explicit: str | None = None) -> str | None:
    """The mlnode binary: --mlnode, $SWIMGUARD_MLNODE, build/mlnode (make mlnode), PATH."""
    for candidate in (explicit, os.environ.get("SWIMGUARD_MLNODE"), str(ROOT / "build/mlnode")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mlnode")


def _argv(
    flavour: Flavour, mlnode: str | None, name: str, port: int, join: int | None,
    slow: list[str],
) -> list[str]:  # fmt: skip
    if flavour.go:
        assert mlnode is not None
        cmd = [mlnode, "-name", name, "-bind", f"{LOOPBACK}:{port}", *flavour.extra]
        if join is not None:
            cmd += ["-join", f"{LOOPBACK}:{join}"]
        return cmd + slow
    cmd = [sys.executable, "-m", "bench.gray_agent", "--name", name,
           "--bind", f"{LOOPBACK}:{port}", *flavour.extra]  # fmt: skip
    if join is not None:
        cmd += ["--join", f"{LOOPBACK}:{join}"]
    return cmd + slow


def _slow_flags(go: bool, seed: int, origin: float, p: Params, dialed: bool) -> list[str]:
    on, off = f"{p.slow_on[0]:g},{p.slow_on[1]:g}", f"{p.slow_off[0]:g},{p.slow_off[1]:g}"
    if go:
        mean = f"{p.slow_mean * 1000:g}ms"
        flags = ["-slow", "-seed", str(seed), "-slow-on", on, "-slow-off", off,
                 "-slow-mean", mean, "-slow-at", f"{origin:.6f}"]  # fmt: skip
        return flags + (["-slow-dialed"] if dialed else [])
    flags = ["--slow", "--slow-seed", str(seed), "--slow-on", on, "--slow-off", off,
             "--slow-mean", f"{p.slow_mean:g}", "--slow-at", f"{origin:.6f}"]  # fmt: skip
    return flags + (["--slow-dialed"] if dialed else [])


def member_seed(seed: int, index: int) -> int:
    """The slow schedule seed of the index-th slowed member in run `seed` (any impl)."""
    return seed * 1000 + index


def run_one(
    flavour: Flavour, *, dialed: bool, seed: int, p: Params, mlnode: str | None,
    log: Any = None,
) -> Run:  # fmt: skip
    """Start the cluster, slow K members, kill one, record everything; then stop it."""
    names = [f"n{i}" for i in range(p.members)]
    slowed = names[1 : 1 + p.slowed]
    victim = names[-1]
    run = Run(flavour.name, dialed, seed, asdict(p), slowed, victim)
    ports = free_ports(p.members)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    recorder = _Recorder(run)
    recorder.expect_ready = 1
    reader = LineReader(recorder.line)
    origin = time.time() + p.settle
    run.origin = origin
    pinger: _Pinger | None = None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with Children() as children:

            def spawn(i: int) -> None:
                slow = []
                if names[i] in slowed:
                    slow = _slow_flags(flavour.go, member_seed(seed, i), origin, p, dialed)
                join = ports[0] if i else None
                proc = children.spawn(
                    _argv(flavour, mlnode, names[i], ports[i], join, slow),
                    stderr=subprocess.PIPE, env=env,
                )  # fmt: skip
                assert proc.stdout is not None
                assert proc.stderr is not None
                reader.add(f"{names[i]}:out", proc.stdout)
                reader.add(f"{names[i]}:err", proc.stderr)
                procs[names[i]] = proc

            spawn(0)
            if not recorder.ready_event.wait(60):
                raise RuntimeError(f"{flavour.name}: the first member did not start")
            recorder.ready_event.clear()
            recorder.expect_ready = p.members
            for i in range(1, p.members):
                spawn(i)
            recorder.ready_event.wait(max(1.0, origin - time.time()))
            with recorder.lock:
                run.ready = len(recorder.ready)
            if run.ready < p.members and log:
                log(f"  warning: only {run.ready}/{p.members} ready at the origin")
            time.sleep(max(0.0, origin - time.time()))
            pinger = _Pinger({n: ports[names.index(n)] for n in slowed})
            pinger.start()
            kill_at = origin + p.kill_at * p.duration
            time.sleep(max(0.0, kill_at - time.time()))
            children.kill(procs[victim])
            run.kill_time = time.time() - origin
            time.sleep(max(0.0, origin + p.duration - time.time()))
            # Counting stops at the duration; detection may take a little longer.
            give_up = origin + run.kill_time + DETECTION_WAIT
            while time.time() < give_up and not recorder.all_saw_failed(
                victim, p.members - 1, origin + run.kill_time
            ):
                time.sleep(0.2)
            run.pings = [(n, s - origin, None if a is None else a - origin)
                         for n, s, a in pinger.stop()]  # fmt: skip
            pinger = None
    finally:
        if pinger is not None:
            pinger.stop()
        reader.close()
        for proc in procs.values():  # Children closes stdout only
            if proc.stderr is not None:
                proc.stderr.close()
    with recorder.lock:
        run.events = [(t - origin, o, k, s) for t, o, k, s in run.events]
        run.suspicions = [(t - origin, o, s) for t, o, s in run.suspicions]
        run.toggles = [(t - origin, m, on, length) for t, m, on, length in run.toggles]
    return run


# --------------------------------------------------------------------------- analysis


def _lag_over(run: Run, member: str, start: float, end: float) -> float:
    """The largest input lag `member` showed in [start, end] (0 with no probe there)."""
    worst = 0.0
    for name, sent, acked in run.pings:
        if name != member or sent > end:
            continue
        if acked is not None and acked < start:
            continue  # read before the window opened
        # Unread at `end`: at least end - sent late; read: exactly its round trip.
        lag = (end - sent) if acked is None or acked > end else (acked - sent)
        worst = max(worst, lag)
    return worst


def analyse(run: Run) -> dict[str, Any]:
    """The run's counts (see the module docstring)."""
    flavour = FLAVOURS[run.flavour]
    members = int(run.params["members"])
    low, high = flavour.timeouts(members)
    # Suspicions found this far back belong to the declaration (an upper estimate of the
    # timeout used when one was refuted and raised again inside the window).
    window = high + 1.0
    kill = run.kill_time if run.kill_time is not None else math.inf
    duration = float(run.params["duration"])
    counts = {"total": 0, "never_slowed": 0, "slowed_responsive": 0, "slowed_beyond": 0,
              "by_slowed_observers": 0}  # fmt: skip
    for t, observer, kind, subject in run.events:
        if kind != "failed" or t < 0 or t > duration:
            continue
        if subject == run.victim and t >= kill:
            continue
        counts["total"] += 1
        if observer in run.slowed:
            counts["by_slowed_observers"] += 1
        if subject not in run.slowed:
            counts["never_slowed"] += 1
            continue
        starts = [s for s, _, subj in run.suspicions if subj == subject and t - window <= s <= t]
        begun = min(starts) if starts else t - low
        lag = _lag_over(run, subject, begun, t)
        counts["slowed_responsive" if lag < t - begun else "slowed_beyond"] += 1
    survivors = [n for n in (f"n{i}" for i in range(members)) if n != run.victim]
    first_seen: dict[str, float] = {}
    for t, observer, kind, subject in run.events:
        if kind == "failed" and subject == run.victim and t >= kill and observer in survivors:
            first_seen.setdefault(observer, t - kill)
    lags = [
        (a - s) for _, s, a in run.pings if a is not None
    ]  # every probe read at all
    return {
        **counts,
        "detect_first": min(first_seen.values()) if first_seen else None,
        "detect_all": (
            max(first_seen.values()) if len(first_seen) == len(survivors) else None
        ),
        "detected_by": len(first_seen),
        "survivors": len(survivors),
        "episodes": sum(1 for _, _, on, _ in run.toggles if on),
        "lag_p50": statistics.median(lags) if lags else None,
        "lag_max": max(lags) if lags else None,
        "probes_unanswered": sum(1 for _, _, a in run.pings if a is None),
        "ready": run.ready,
        "suspicion_timeouts": [round(low, 3), round(high, 3)],
    }


# --------------------------------------------------------------------------- report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per configuration, each variant's counts summed over seeds."""
    lines = [
        "| configuration | variant | false declarations [about never-slowed] |"
        " slowed: responsive / beyond | by slowed observers | detection first / all (s) |"
        " seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["flavour"], r["dialed"]) for r in rows},
                  key=lambda k: (list(FLAVOURS).index(k[0]), k[1]))  # fmt: skip
    for name, dialed in keys:
        mine = [r for r in rows if r["flavour"] == name and r["dialed"] == dialed]

        def total(key: str, mine: list[dict[str, Any]] = mine) -> int:
            return sum(int(r[key]) for r in mine)

        def mean(key: str, mine: list[dict[str, Any]] = mine) -> float | None:
            values = [float(r[key]) for r in mine if r[key] is not None]
            return statistics.mean(values) if values else None

        lines.append(
            f"| {FLAVOURS[name].label} | {'(b) dialed late' if dialed else '(a) dialed on time'}"
            f" | {total('total')} [{total('never_slowed')}]"
            f" | {total('slowed_responsive')} / {total('slowed_beyond')}"
            f" | {total('by_slowed_observers')}"
            f" | {_fmt(mean('detect_first'))} / {_fmt(mean('detect_all'))}"
            f" | {','.join(str(r['seed']) for r in mine)} |"
        )
    return "\n".join(lines) + "\n"


def _rounded(value: Any) -> Any:
    """`value` with every float rounded to the millisecond (the JSON stays small)."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _floats(text: str) -> tuple[float, float]:
    a, b = (float(x) for x in text.split(","))
    return a, b


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gray_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick run: 6 members, 2 slowed, 40 s, seed 1, episodes 3-10 s",
    )
    parser.add_argument("--members", type=int)
    parser.add_argument("--slowed", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--settle", type=float)
    parser.add_argument("--seeds", default=None, help="comma-separated (default 1,2; --small 1)")
    parser.add_argument("--variants", default="a,b", help="a (dialed on time), b (--slow-dialed)")
    parser.add_argument("--configs", default=",".join(FLAVOURS),
                        help=f"comma-separated, of {', '.join(FLAVOURS)}")  # fmt: skip
    parser.add_argument("--slow-on", type=_floats)
    parser.add_argument("--slow-off", type=_floats)
    parser.add_argument("--slow-mean", type=float)
    parser.add_argument("--mlnode", help="mlnode binary (default: build/mlnode, `make mlnode`)")
    parser.add_argument("--out", type=Path, default=None, help="write runs and the table here")
    parser.add_argument("--tag", default=None, help="file name stem in --out")
    parser.add_argument(
        "--from-json",
        type=Path,
        action="append",
        default=[],
        help="re-count the runs an --out wrote (repeatable); run nothing",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        recounted: list[dict[str, Any]] = []
        saved_runs = [r for path in args.from_json for r in json.loads(path.read_text())["runs"]]
        for raw in saved_runs:
            run = Run(**raw)
            recounted.append({"flavour": run.flavour, "dialed": run.dialed, "seed": run.seed,
                         **analyse(run)})  # fmt: skip
        print(table(recounted))
        return 0
    p = Params()
    if args.small:
        p = Params(members=6, slowed=2, duration=40.0, settle=8.0,
                   slow_on=(3.0, 10.0), slow_off=(3.0, 8.0))  # fmt: skip
    for key in ("members", "slowed", "duration", "settle", "slow_on", "slow_off", "slow_mean"):
        if getattr(args, key) is not None:
            setattr(p, key, getattr(args, key))
    if not 1 <= p.slowed < p.members - 1:
        parser.error("--slowed: need 1 <= slowed < members - 1 (a never-slowed victim)")
    seeds = [int(s) for s in (args.seeds or ("1" if args.small else "1,2")).split(",")]
    variants = [v.strip() for v in args.variants.split(",")]
    if not set(variants) <= {"a", "b"}:
        parser.error("--variants: a, b")
    configs = [c.strip() for c in args.configs.split(",")]
    unknown = [c for c in configs if c not in FLAVOURS]
    if unknown:
        parser.error(f"--configs: unknown {unknown}")
    mlnode = find_mlnode(args.mlnode)
    if mlnode is None and any(FLAVOURS[c].go for c in configs):
        parser.error("mlnode not found: `make mlnode` (or --mlnode PATH)")
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        for variant in variants:
            for name in configs:
                started = time.monotonic()
                run = run_one(FLAVOURS[name], dialed=variant == "b", seed=seed, p=p,
                              mlnode=mlnode, log=print)  # fmt: skip
                row = {"flavour": name, "dialed": variant == "b", "seed": seed, **analyse(run)}
                rows.append(row)
                runs.append(asdict(run))
                print(f"{name} ({variant}) seed {seed}: {row['total']} false"
                      f" [{row['never_slowed']}], responsive {row['slowed_responsive']},"
                      f" beyond {row['slowed_beyond']}, detect {_fmt(row['detect_first'])}"
                      f" / {_fmt(row['detect_all'])} s, lag p50/max {_fmt(row['lag_p50'])}"
                      f"/{_fmt(row['lag_max'])} s ({time.monotonic() - started:.0f} s)",
                      flush=True)  # fmt: skip
    text = table(rows)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = args.tag or ("small" if args.small else f"n{p.members}-k{p.slowed}")
        (args.out / f"{stem}.json").write_text(
            json.dumps(_rounded({"params": asdict(p), "rows": rows, "runs": runs})) + "\n"
        )
        (args.out / f"{stem}.md").write_text(
            f"`python -m bench.gray_bench {' '.join(argv if argv is not None else sys.argv[1:])}`"
            f"\n\n{text}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
