"""Cluster benchmark: N swimguard agents vs N Debian serf agents on 127.0.0.1.

For each cluster type, one after the other in the same run (so they never compete for
the 2 cores), it measures:

- join convergence: member 0 starts; once it is up, the other N-1 are spawned with
  `--join member0`; time from the last spawn until every member's own event stream lists
  all N as alive (also given from the moment the last member printed its own join, which
  leaves out process start-up, i.e. Python's import time);
- idle cost: after a settle period, median CPU % (utime+stime over the window) and median
  RSS per agent over `--idle-seconds`, with the machine's load average for context;
- SIGKILL detection: a random non-seed member is killed; time until the first survivor
  and until every survivor reports it failed (and the first suspicion); the victim is
  then restarted under the same name and port and the rejoin time is recorded. Repeated
  `--kills` times; medians are reported.

Event times are the arrival times of the agents' stdout lines at this process: for
swimguard its JSON event lines, for serf its `serf: EventMember*` log lines (delivered
within milliseconds, as in shared/research/peers-measured.md). Serf's `-event-handler`
output is recorded too (timestamped by the handler) but is ~1 s late by design (serf's
agent coalesces member events with a 1 s quiescent period), so it is reported separately
and not used for the ratios.

With `--metrics`, a third cluster of swimguard agents serving Prometheus metrics
(`--metrics-addr 127.0.0.1:0`) runs after the plain one and is reported beside it, so one
command gives serf / swimguard / swimguard+metrics idle CPU and RSS.

Run: `python -m bench.cluster_bench [--members 20] [--idle-seconds 60] [--kills 5] [--metrics]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.procs import (
    LOOPBACK,
    Children,
    LineReader,
    ensure_serf,
    free_ports,
    measure_idle,
    ratio,
    serf_version,
    summary,
)

# Targets from the issue ("Speed and cost").
TARGET_CPU_RATIO = 1.5
TARGET_RSS_BYTES = 40_000_000  # 40 MB (decimal; 38.1 MiB), the stricter reading
TARGET_DETECT_RATIO = 1.1
TARGET_METRICS_CPU_RATIO = 1.1  # issue 14: idle CPU with metrics within 10 % of without

METRICS_ARGS = ("--metrics-addr", f"{LOOPBACK}:0")
"""What `--metrics` adds to every agent of the third cluster: an unscraped /metrics server
(a scrape costs the agent about a millisecond; what we want to see is the idle cost of
counting and of the listening server)."""

MIB = 1024 * 1024

# ---------------------------------------------------------------------------- kinds

Parsed = tuple[str, str]  # (event, subject): event in join/failed/leave/update/reap/suspect


class Kind:
    """How to start one cluster type's agent and read its events."""

    label = ""
    ports_per_agent = 1

    def argv(self, name: str, ports: Sequence[int], seed: str | None, run_dir: Path) -> list[str]:
        """Command line for agent `name` listening on `ports`, joining `seed`."""
        raise NotImplementedError

    def parse(self, line: str) -> Parsed | None:
        """Membership event on one stdout line, or None."""
        raise NotImplementedError

    def handler_events(self, run_dir: Path, name: str) -> list[tuple[float, str, str]]:
        """Events written by an external event handler: (ts, event, subject)."""
        return []


_SERF_EVENT = re.compile(r"serf: EventMember(Join|Failed|Leave|Update|Reap): (\S+)")
_SERF_SUSPECT = re.compile(r"memberlist: Suspect (\S+) has failed")

# Serf runs the handler through /bin/sh with SERF_EVENT set and one member per stdin line
# ("name\taddr\trole\ttags"); $EPOCHREALTIME avoids forking `date` per line.
_SERF_HANDLER = """#!/bin/bash
while IFS= read -r line; do
  printf '%s %s %s\\n' "$EPOCHREALTIME" "$SERF_EVENT" "$line" >> "$1"
done
"""


class SerfKind(Kind):
    """Debian's `serf agent`, LAN profile, events from its INFO log lines."""

    label = "serf"
    ports_per_agent = 2  # gossip (UDP+TCP) and RPC (TCP)

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def argv(self, name: str, ports: Sequence[int], seed: str | None, run_dir: Path) -> list[str]:
        handler = run_dir / "serf-handler.sh"
        if not handler.exists():
            handler.write_text(_SERF_HANDLER)
        events_file = run_dir / f"serf-events-{name}.log"
        cmd = [
            self.binary, "agent",
            "-node", name,
            "-bind", f"{LOOPBACK}:{ports[0]}",
            "-rpc-addr", f"{LOOPBACK}:{ports[1]}",
            "-profile", "lan",
            "-log-level", "info",
            "-event-handler", f"bash {shlex.quote(str(handler))} {shlex.quote(str(events_file))}",
        ]  # fmt: skip
        if seed:
            cmd += ["-join", seed]
        return cmd

    def parse(self, line: str) -> Parsed | None:
        m = _SERF_EVENT.search(line)
        if m:
            return m.group(1).lower(), m.group(2)
        m = _SERF_SUSPECT.search(line)
        if m:
            return "suspect", m.group(1)
        return None

    def handler_events(self, run_dir: Path, name: str) -> list[tuple[float, str, str]]:
        path = run_dir / f"serf-events-{name}.log"
        out: list[tuple[float, str, str]] = []
        with contextlib.suppress(FileNotFoundError):
            for line in path.read_text(errors="replace").splitlines():
                parts = line.split(" ", 2)
                if len(parts) == 3 and parts[1].startswith("member-"):
                    with contextlib.suppress(ValueError):
                        out.append((float(parts[0]), parts[1][7:], parts[2].split("\t")[0].strip()))
        return out


class SwimguardKind(Kind):
    """`python -m swimguard agent`, LAN profile, events from its JSON lines."""

    def __init__(self, python: str, extra: Sequence[str] = (), label: str = "swimguard") -> None:
        self.python = python
        self.extra = list(extra)
        self.label = label

    def argv(self, name: str, ports: Sequence[int], seed: str | None, run_dir: Path) -> list[str]:
        cmd = [self.python, "-m", "swimguard", "agent", "--name", name,
               "--bind", f"{LOOPBACK}:{ports[0]}", "--profile", "lan",
               "--rpc-addr", ""]  # fmt: skip
        if seed:
            cmd += ["--join", seed]
        return cmd + self.extra

    def parse(self, line: str) -> Parsed | None:
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
        return event[7:], name


# ---------------------------------------------------------------------------- cluster


@dataclass
class AgentProc:
    """One agent process (one generation: a restart makes a new one)."""

    name: str
    ports: list[int]
    key: str
    proc: subprocess.Popen[bytes]
    spawned_at: float
    self_join_at: float | None = None
    view: dict[str, str] = field(default_factory=dict)  # subject -> alive/failed/left
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (ts, event, subject)


class BenchError(RuntimeError):
    """The cluster did not reach a state the benchmark needs (with the reason)."""


class Cluster:
    """N agents of one kind, their parsed event streams and waits on them."""

    def __init__(self, kind: Kind, kids: Children, run_dir: Path, n: int) -> None:
        self.kind = kind
        self.kids = kids
        self.run_dir = run_dir
        self.names = [f"{kind.label[:4]}{i:02d}" for i in range(n)]
        self.agents: dict[str, AgentProc] = {}
        self.by_key: dict[str, AgentProc] = {}
        self.cond = threading.Condition()
        self.expected: set[str] = set()
        self.converged_at: float | None = None
        self.generation = 0
        self.reader = LineReader(self._on_line)
        self.ports = free_ports(n * kind.ports_per_agent)

    def close(self) -> None:
        """Kill every agent (process groups) and stop reading."""
        self.kids.kill_all()
        self.reader.close()

    # -- events

    def _on_line(self, key: str, line: str, ts: float) -> None:
        parsed = self.kind.parse(line)
        if parsed is None:
            return
        event, subject = parsed
        with self.cond:
            agent = self.by_key.get(key)
            if agent is None:
                return
            agent.events.append((ts, event, subject))
            if event in ("join", "update"):
                agent.view[subject] = "alive"
                if subject == agent.name and agent.self_join_at is None:
                    agent.self_join_at = ts
            elif event == "failed":
                agent.view[subject] = "failed"
            elif event == "leave":
                agent.view[subject] = "left"
            elif event == "reap":
                agent.view.pop(subject, None)
            if self.converged_at is None and self._complete_locked():
                self.converged_at = ts
            self.cond.notify_all()

    def _complete_locked(self) -> bool:
        if not self.expected:
            return False
        for name in self.expected:
            agent = self.agents.get(name)
            if agent is None:
                return False
            alive = {s for s, st in agent.view.items() if st == "alive"}
            if alive != self.expected:
                return False
        return True

    def expect(self, names: Sequence[str]) -> None:
        """Set the member set that counts as converged and reset the convergence time."""
        with self.cond:
            self.expected = set(names)
            self.converged_at = time.time() if self._complete_locked() else None

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait (under the lock) until `predicate()`; BenchError on timeout or a dead agent."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                for agent in self.agents.values():
                    if agent.proc.poll() is not None and agent.name in self.expected:
                        raise BenchError(
                            f"{self.kind.label} agent {agent.name} exited with "
                            f"{agent.proc.returncode} while waiting for {what}; "
                            f"stderr tail: {self.stderr_tail(agent.name)!r}"
                        )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"{self.kind.label}: timed out after {timeout:.0f} s: {what}")
                self.cond.wait(min(left, 0.5))

    def stderr_tail(self, name: str, chars: int = 600) -> str:
        """Last characters of an agent's stderr log."""
        with contextlib.suppress(OSError):
            return (self.run_dir / f"{name}.stderr").read_text(errors="replace")[-chars:]
        return ""

    # -- processes

    def spawn(self, index: int) -> AgentProc:
        """Start (or restart) member `index`, joining member 0 unless it is member 0."""
        name = self.names[index]
        k = self.kind.ports_per_agent
        ports = self.ports[index * k : (index + 1) * k]
        seed = None if index == 0 else f"{LOOPBACK}:{self.ports[0]}"
        argv = self.kind.argv(name, ports, seed, self.run_dir)
        self.generation += 1
        key = f"{name}#{self.generation}"
        with open(self.run_dir / f"{name}.stderr", "ab") as err:
            proc = self.kids.spawn(argv, stderr=err)
        agent = AgentProc(name, list(ports), key, proc, time.time())
        with self.cond:
            self.agents[name] = agent
            self.by_key[key] = agent
        assert proc.stdout is not None
        self.reader.add(key, proc.stdout)
        return agent

    def kill(self, name: str) -> float:
        """SIGKILL agent `name`'s process group; returns the kill time."""
        agent = self.agents[name]
        t = time.time()
        self.kids.kill(agent.proc)
        agent.proc.wait(timeout=10)
        return t

    def pids(self) -> list[int]:
        """PIDs of the current agent processes, in member order."""
        return [self.agents[n].proc.pid for n in self.names if n in self.agents]

    def events_since(self, t: float) -> list[tuple[str, float, str, str]]:
        """(observer, ts, event, subject) of every event at or after `t`."""
        with self.cond:
            return [
                (a.name, ts, ev, subj)
                for a in self.agents.values()
                for ts, ev, subj in a.events
                if ts >= t
            ]


# ---------------------------------------------------------------------------- phases


@dataclass
class Options:
    """Benchmark parameters (see the command-line flags)."""

    members: int = 20
    idle_seconds: float = 60.0
    settle_seconds: float = 10.0
    kills: int = 9
    join_timeout: float = 90.0
    detect_timeout: float = 60.0
    rejoin_delay: float = 4.0
    seed: int = 1
    wait_load: float = 0.0  # >0: before each cluster, wait (<= 10 min) for loadavg <= this


def wait_for_load(limit: float, max_wait: float = 600.0) -> float:
    """Sleep until the 1-min load average is <= `limit` (or `max_wait`); returns seconds waited."""
    t0 = time.monotonic()
    while limit > 0 and os.getloadavg()[0] > limit and time.monotonic() - t0 < max_wait:
        time.sleep(5)
    return time.monotonic() - t0


def run_join(cluster: Cluster, opts: Options) -> dict[str, Any]:
    """Start member 0, wait until it is up, spawn the rest, wait until all see all N."""
    seed = cluster.spawn(0)
    cluster.expect([cluster.names[0]])
    cluster.wait(lambda: seed.self_join_at is not None, opts.join_timeout, "member 0 up")
    t_first = time.time()
    for i in range(1, opts.members):
        cluster.spawn(i)
    t_last = time.time()
    cluster.expect(cluster.names)
    cluster.wait(lambda: cluster.converged_at is not None, opts.join_timeout, "join convergence")
    assert cluster.converged_at is not None
    converged = cluster.converged_at
    last_up = max(a.self_join_at or a.spawned_at for a in cluster.agents.values())
    per_member: list[float] = []
    expected = set(cluster.names)
    for a in cluster.agents.values():
        view: dict[str, str] = {}
        for ts, ev, subj in a.events:
            if ev in ("join", "update"):
                view[subj] = "alive"
            elif ev in ("failed", "leave"):
                view[subj] = ev
            if {s for s, st in view.items() if st == "alive"} == expected:
                per_member.append(ts - t_last)
                break
    return {
        "converge_from_last_spawn_s": converged - t_last,
        "converge_from_last_up_s": max(0.0, converged - last_up),
        "spawn_duration_s": t_last - t_first,
        "seed_startup_s": (seed.self_join_at or t_first) - seed.spawned_at,
        "member_complete_from_last_spawn_s": summary(per_member),
    }


def run_idle(cluster: Cluster, opts: Options) -> dict[str, Any]:
    """Settle, then measure CPU % and RSS per agent over the idle window."""
    time.sleep(opts.settle_seconds)
    t0 = time.time()
    window = measure_idle(cluster.pids(), opts.idle_seconds)
    churn = [e for e in cluster.events_since(t0) if e[2] != "suspect"]
    cpus = [s.cpu_percent for s in window.samples]
    rss = [s.rss_median / MIB for s in window.samples]
    return {
        "window_s": window.seconds,
        "cpu_percent_per_agent": summary(cpus),
        "cpu_percent_cluster": sum(cpus),
        "rss_mib_per_agent": summary(rss),
        "rss_bytes_median": (sorted(s.rss_median for s in window.samples)[len(rss) // 2]
                             if rss else None),
        "membership_events_in_window": len(churn),
        "suspicions_in_window": len(cluster.events_since(t0)) - len(churn),
        "lost_agents": len(window.lost_pids),
        "machine": {
            "loadavg_start": list(window.loadavg_start),
            "loadavg_end": list(window.loadavg_end),
            "system_cpu_percent_all_cores": window.system_cpu_percent,
            "cpu_count": os.cpu_count(),
        },
    }  # fmt: skip


def run_kills(cluster: Cluster, opts: Options, rng: random.Random) -> dict[str, Any]:
    """SIGKILL a random non-seed member `opts.kills` times; detection and rejoin times."""
    kills: list[dict[str, Any]] = []
    t_start = time.time()
    load0 = os.getloadavg()
    psutil.cpu_percent(interval=None)  # machine CPU over the kill phase, for context
    active = list(cluster.names)  # a victim that fails to rejoin is dropped from it
    for _ in range(opts.kills):
        if len(active) < 3:
            break
        time.sleep(rng.uniform(1.0, 3.0))  # land the kill at a random point of the probe cycle
        victim = rng.choice(active[1:])
        survivors = [n for n in active if n != victim]
        t_kill = cluster.kill(victim)
        cluster.expect(survivors)

        def failed_by(observer: str, victim: str = victim, t_kill: float = t_kill) -> float | None:
            for ts, ev, subj in cluster.agents[observer].events:
                if ts >= t_kill and ev == "failed" and subj == victim:
                    return ts
            return None

        def all_seen(survivors: list[str] = survivors) -> bool:
            return all(failed_by(s) is not None for s in survivors)

        record: dict[str, Any] = {"victim": victim}
        try:
            cluster.wait(
                all_seen,
                opts.detect_timeout,
                f"every survivor marks {victim} failed",
            )
        except BenchError as exc:
            record["error"] = str(exc)
        with cluster.cond:
            seen = [t for s in survivors if (t := failed_by(s)) is not None]
            suspects = [ts for _, ts, ev, subj in cluster.events_since(t_kill)
                        if ev == "suspect" and subj == victim]  # fmt: skip
        record["observers"] = len(seen)
        record["survivors"] = len(survivors)
        record["first_suspect_s"] = min(suspects) - t_kill if suspects else None
        record["first_failed_s"] = min(seen) - t_kill if seen else None
        record["all_failed_s"] = max(seen) - t_kill if len(seen) == len(survivors) else None
        # Serf's handler runs ~1 s after the log line (event coalescing): read it after the
        # pause that also keeps a failed+join pair out of one coalescing window.
        time.sleep(opts.rejoin_delay)
        handler = [
            ts for s in survivors for ts, ev, subj in cluster.kind.handler_events(
                cluster.run_dir, s) if ts >= t_kill and ev == "failed" and subj == victim
        ]  # fmt: skip
        if handler:
            record["handler_first_failed_s"] = min(handler) - t_kill
            record["handler_all_failed_s"] = (
                max(handler) - t_kill if len(handler) >= len(survivors) else None
            )
        # Restart the victim under the same name and port; wait for every view to be whole.
        t_restart = time.time()
        reborn = cluster.spawn(cluster.names.index(victim))
        cluster.expect(active)
        try:
            cluster.wait(lambda: cluster.converged_at is not None, opts.join_timeout, "rejoin")
            assert cluster.converged_at is not None
            record["rejoin_s"] = cluster.converged_at - t_restart
            if reborn.self_join_at is not None:  # leaves out process start-up
                record["rejoin_from_up_s"] = max(0.0, cluster.converged_at - reborn.self_join_at)
        except BenchError as exc:
            # Go on measuring detection with one member fewer rather than stop.
            record["rejoin_error"] = str(exc)
            cluster.kill(victim)
            active.remove(victim)
            cluster.expect(active)
        kills.append(record)
    victims = {k["victim"] for k in kills}
    false_failed = [
        e for e in cluster.events_since(t_start)
        if e[2] == "failed" and e[3] not in victims
    ]  # fmt: skip

    def col(key: str) -> list[float]:
        return [k[key] for k in kills if k.get(key) is not None]

    return {
        "kills": kills,
        "first_suspect_s": summary(col("first_suspect_s")),
        "first_failed_s": summary(col("first_failed_s")),
        "all_failed_s": summary(col("all_failed_s")),
        "rejoin_s": summary(col("rejoin_s")),
        "rejoin_from_up_s": summary(col("rejoin_from_up_s")),
        "handler_first_failed_s": summary(col("handler_first_failed_s")),
        "handler_all_failed_s": summary(col("handler_all_failed_s")),
        "incomplete_kills": sum(1 for k in kills if "error" in k or "rejoin_error" in k),
        "machine": {
            "loadavg_start": list(load0),
            "loadavg_end": list(os.getloadavg()),
            "system_cpu_percent_all_cores": psutil.cpu_percent(interval=None),
        },
        "failed_events_about_healthy_members": len(false_failed),
    }


def _dump_events(cluster: Cluster) -> None:
    """Write every agent generation's parsed events to <run_dir>/<name>.events (diagnosis)."""
    with cluster.cond:
        gens = list(cluster.by_key.values())
    for agent in gens:
        with open(cluster.run_dir / f"{agent.name}.events", "a") as f:
            f.write(f"# generation {agent.key} spawned {agent.spawned_at:.3f}\n")
            for ts, ev, subj in agent.events:
                f.write(f"{ts:.3f} {ev} {subj}\n")


def run_cluster(kind: Kind, opts: Options, keep_dir: Path | None) -> dict[str, Any]:
    """Whole benchmark for one cluster type; every child is killed before returning."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-{kind.label}-"))
    rng = random.Random(opts.seed)
    result: dict[str, Any] = {"members": opts.members}
    waited = wait_for_load(opts.wait_load)
    result["waited_for_load_s"] = waited
    result["loadavg_at_start"] = list(os.getloadavg())
    try:
        with Children() as kids:
            cluster = Cluster(kind, kids, run_dir, opts.members)
            try:
                _log(f"{kind.label}: starting {opts.members} agents")
                result["join"] = run_join(cluster, opts)
                _log(f"{kind.label}: converged in "
                     f"{result['join']['converge_from_last_spawn_s']:.2f} s; "
                     f"idle {opts.settle_seconds:.0f}+{opts.idle_seconds:.0f} s")  # fmt: skip
                result["idle"] = run_idle(cluster, opts)
                _log(f"{kind.label}: {opts.kills} SIGKILLs")
                result["detect"] = run_kills(cluster, opts, rng)
            except BenchError as exc:
                result["error"] = str(exc)
                _log(f"{kind.label}: ERROR {exc}")
            finally:
                cluster.close()
                _dump_events(cluster)
    finally:
        if keep_dir is not None:
            dest = keep_dir / kind.label
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(run_dir, dest)
            result["logs"] = str(dest)
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------- report


def _med(res: dict[str, Any] | None, *path: str) -> float | None:
    cur: Any = res
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    if isinstance(cur, dict):
        cur = cur.get("median")
    return float(cur) if isinstance(cur, (int, float)) else None


ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("CPU % per agent (median, idle)", ("idle", "cpu_percent_per_agent"), "{:.3f}"),
    ("CPU % whole cluster (idle)", ("idle", "cpu_percent_cluster"), "{:.2f}"),
    ("RSS MiB per agent (median)", ("idle", "rss_mib_per_agent"), "{:.1f}"),
    ("join convergence, from last spawn (s)", ("join", "converge_from_last_spawn_s"), "{:.2f}"),
    ("join convergence, from last agent up (s)", ("join", "converge_from_last_up_s"), "{:.2f}"),
    ("SIGKILL first suspect (s, median)", ("detect", "first_suspect_s"), "{:.2f}"),
    ("SIGKILL first observer (s, median)", ("detect", "first_failed_s"), "{:.2f}"),
    ("SIGKILL all observers (s, median)", ("detect", "all_failed_s"), "{:.2f}"),
    ("rejoin after restart (s, median)", ("detect", "rejoin_s"), "{:.2f}"),
    ("rejoin, from restarted agent up (s, median)", ("detect", "rejoin_from_up_s"), "{:.2f}"),
    ("serf event-handler first (s, median)", ("detect", "handler_first_failed_s"), "{:.2f}"),
    ("serf event-handler all (s, median)", ("detect", "handler_all_failed_s"), "{:.2f}"),
]


def compare(serf: dict[str, Any] | None, sg: dict[str, Any] | None,
            sg_metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ratios swimguard/serf and the issue's targets, each with pass/fail (None = unknown).

    With `sg_metrics` (the `--metrics` cluster), also its idle CPU over plain swimguard's.
    """
    cpu_r = ratio(
        _med(sg, "idle", "cpu_percent_per_agent"), _med(serf, "idle", "cpu_percent_per_agent")
    )
    first_r = ratio(_med(sg, "detect", "first_failed_s"), _med(serf, "detect", "first_failed_s"))
    all_r = ratio(_med(sg, "detect", "all_failed_s"), _med(serf, "detect", "all_failed_s"))
    rss = _med(sg, "idle", "rss_bytes_median")
    ratios = {
        "cpu_per_agent": cpu_r,
        "rss_per_agent": ratio(_med(sg, "idle", "rss_mib_per_agent"),
                               _med(serf, "idle", "rss_mib_per_agent")),
        "join_convergence": ratio(_med(sg, "join", "converge_from_last_spawn_s"),
                                  _med(serf, "join", "converge_from_last_spawn_s")),
        "detect_first": first_r,
        "detect_all": all_r,
    }  # fmt: skip
    metrics_r = ratio(_med(sg_metrics, "idle", "cpu_percent_per_agent"),
                      _med(sg, "idle", "cpu_percent_per_agent"))
    if sg_metrics is not None:
        ratios["metrics_cpu_per_agent"] = metrics_r
        ratios["metrics_rss_per_agent"] = ratio(_med(sg_metrics, "idle", "rss_mib_per_agent"),
                                                _med(sg, "idle", "rss_mib_per_agent"))

    def ok(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    targets = {
        "cpu_per_agent_le_1.5x_serf": ok(cpu_r, TARGET_CPU_RATIO),
        "rss_le_40MB": ok(rss, TARGET_RSS_BYTES),
        "detect_first_le_1.1x_serf": ok(first_r, TARGET_DETECT_RATIO),
        "detect_all_le_1.1x_serf": ok(all_r, TARGET_DETECT_RATIO),
    }
    if sg_metrics is not None:
        targets["metrics_cpu_le_1.1x_plain"] = ok(metrics_r, TARGET_METRICS_CPU_RATIO)
    return {"ratios": ratios, "targets": targets}


def render(results: dict[str, Any]) -> str:
    """Plain-text table of the clusters (serf, swimguard, swimguard+metrics), the ratios
    and the targets; the metrics columns appear only when that cluster ran."""
    serf, sg = results.get("serf"), results.get("swimguard")
    sgm = results.get("swimguard_metrics")
    cmp_ = results["comparison"]
    w = 44

    def cell(value: float | None, fmt: str) -> str:
        return fmt.format(value) if value is not None else "-"

    def times(r: float | None) -> str:
        return f"{r:.2f}x" if r is not None else "-"

    head = f"{'metric':<{w}} {'serf':>10} {'swimguard':>10} {'sg/serf':>8}"
    if sgm is not None:
        head += f" {'sg+metrics':>10} {'m/sg':>6}"
    lines = [head, "-" * len(head)]
    for label, path, fmt in ROWS:
        a, b = _med(serf, *path), _med(sg, *path)
        m = _med(sgm, *path)
        if a is None and b is None and m is None:
            continue
        line = f"{label:<{w}} {cell(a, fmt):>10} {cell(b, fmt):>10} {times(ratio(b, a)):>8}"
        if sgm is not None:
            line += f" {cell(m, fmt):>10} {times(ratio(m, b)):>6}"
        lines.append(line)
    for res, name in ((serf, "serf"), (sg, "swimguard"), (sgm, "swimguard+metrics")):
        if not res:
            continue
        d = res.get("detect", {})
        idle = res.get("idle", {})
        if "error" in res:
            lines.append(f"{name}: ERROR {res['error']}")
        if d and "kills" in d:
            lines.append(
                f"{name}: kills={len(d.get('kills', []))} "
                f"incomplete={d.get('incomplete_kills')} "
                f"failed-events-about-healthy={d.get('failed_events_about_healthy_members')}"
            )
            km = d.get("machine")
            if km:
                lines.append(
                    f"{name}: kill phase load avg {km['loadavg_start'][0]:.2f}->"
                    f"{km['loadavg_end'][0]:.2f}, machine CPU "
                    f"{km['system_cpu_percent_all_cores']:.1f}%"
                )
        if idle and "machine" in idle:
            m = idle["machine"]
            lines.append(
                f"{name}: idle window {idle['window_s']:.0f} s, load avg "
                f"{m['loadavg_start'][0]:.2f}->{m['loadavg_end'][0]:.2f}, machine CPU "
                f"{m['system_cpu_percent_all_cores']:.1f}% of {m['cpu_count']} cores, "
                f"membership events in window={idle['membership_events_in_window']}"
            )
    lines.append("targets:")
    for key, val in cmp_["targets"].items():
        lines.append(f"  {key:<32} {'n/a' if val is None else ('PASS' if val else 'MISS')}")
    return "\n".join(lines)


def _log(msg: str) -> None:
    print(f"[cluster_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _git_rev() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)  # fmt: skip
        return out.stdout.strip()
    return ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags; defaults are the issue's figures."""
    p = argparse.ArgumentParser(
        prog="python -m bench.cluster_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--members", type=int, default=20, help="agents per cluster (default 20)")
    p.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default 60)")
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=10.0,
        help="wait after convergence before the idle window (default 10)",
    )
    p.add_argument(
        "--kills", type=int, default=9, help="SIGKILLs per cluster (default 9; 5 are too noisy)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed for victims and timing")
    p.add_argument("--skip-serf", action="store_true", help="do not run the serf cluster")
    p.add_argument("--skip-swimguard", action="store_true", help="do not run the swimguard cluster")
    p.add_argument("--metrics", action="store_true",
                   help="also run a swimguard cluster whose agents serve /metrics "
                        "(--metrics-addr 127.0.0.1:0, unscraped), reported beside the plain one")
    p.add_argument(
        "--out",
        default="results/cluster_bench.json",
        help="JSON results path (default results/cluster_bench.json; '' = none)",
    )
    p.add_argument(
        "--keep-logs",
        default="",
        help="copy agents' logs and serf handler files into this directory",
    )
    p.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for swimguard agents (default: this one)",
    )
    p.add_argument(
        "--swimguard-arg",
        action="append",
        default=[],
        help="extra argument for every swimguard agent (repeatable)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--wait-load", type=float, default=0.0,
                   help="before each cluster, wait up to 10 min for the 1-min load average "
                        "to fall to this (shared machines; default 0 = do not wait)")
    args = p.parse_args(argv)
    if args.members < 3:
        p.error("--members must be >= 3 (a seed, a victim and an observer)")
    if args.kills < 0 or args.idle_seconds <= 0:
        p.error("--kills must be >= 0 and --idle-seconds > 0")
    return args


def options_from_args(args: argparse.Namespace) -> Options:
    """The `Options` the parsed flags ask for."""
    return Options(
        members=args.members,
        idle_seconds=args.idle_seconds,
        settle_seconds=args.settle_seconds,
        kills=args.kills,
        seed=args.seed,
        wait_load=args.wait_load,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every requested cluster ran fully, else 1."""
    args = parse_args(argv)
    opts = options_from_args(args)
    keep = Path(args.keep_logs).resolve() if args.keep_logs else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(shlex.quote(a) for a in [sys.executable, "-m",
                                                          "bench.cluster_bench",
                                                          *(argv if argv is not None
                                                            else sys.argv[1:])]),
            "options": vars(opts),
            "host": platform.node(),
            "cpu_count": os.cpu_count(),
            "loadavg_at_start": list(os.getloadavg()),
            "python": platform.python_version(),
            "git_rev": _git_rev(),
            "event_clock": "arrival time of each agent stdout line at the bench",
        },
    }  # fmt: skip
    failed = False
    if not args.skip_serf:
        binary = ensure_serf()
        if binary is None:
            results["serf"] = {
                "error": "serf not installed and could not be installed "
                "(needs root and apt-get); use --skip-serf"
            }
            failed = True
        else:
            results["meta"]["serf_version"] = serf_version(binary)
            results["serf"] = run_cluster(SerfKind(binary), opts, keep)
    if not args.skip_swimguard:
        kind = SwimguardKind(args.python, args.swimguard_arg)
        results["swimguard"] = run_cluster(kind, opts, keep)
    if args.metrics:
        kind = SwimguardKind(args.python, [*args.swimguard_arg, *METRICS_ARGS],
                             label="swimguard+metrics")
        results["swimguard_metrics"] = run_cluster(kind, opts, keep)
    results["comparison"] = compare(results.get("serf"), results.get("swimguard"),
                                    results.get("swimguard_metrics"))
    results["meta"]["loadavg_at_end"] = list(os.getloadavg())
    for key in ("serf", "swimguard", "swimguard_metrics"):
        res = results.get(key)
        if res is not None and ("error" in res or res.get("detect", {}).get("incomplete_kills")):
            failed = True
    print(render(results), flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        _log(f"results written to {out}")
    if args.strict and any(v is False for v in results["comparison"]["targets"].values()):
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
