"""The Lifeguard reproduction: false positives and detection latency, per configuration.

One *run* is (configuration, anomaly count, seed). Everything random in a run except the
configuration comes from the seed and the anomaly count, so the six configurations face the
same slow members, the same slow episodes and the same crash victims (a paired comparison).

A run: N members join and settle; then for `duration` virtual seconds `anomalies` members
(never m0) are slow in episodes (see `AnomalyModel`), and every `crash_interval` seconds a
member that is never slowed is crashed (true failures, to time detection). Measured: false
failure declarations (see `report.py`), median first/full detection latency of the crashes,
and messages and bytes sent per member-second.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from swimguard.config import Config
from swimguard.sim.invariants import InvariantViolation, attach_all, convergence_gaps
from swimguard.sim.report import FailureMetrics, LoadWindow
from swimguard.sim.scenarios import start_cluster
from swimguard.sim.slow import SlowSpec, parse_slow

__all__ = [
    "CONFIG_NAMES",
    "AnomalyModel",
    "RunResult",
    "RunSpec",
    "SimulationFailed",
    "experiment_config",
    "run_many",
    "run_one",
]

CONFIG_NAMES = ("swim", "lha-probe", "lha-suspicion", "buddy", "lifeguard", "lifeguard-looplag")


def experiment_config(
    name: str, *, alpha: int = 5, beta: int = 6, compression: bool = False
) -> Config:
    """The paper's configurations on memberlist LAN timing with SuspicionMult=α, MaxMult=β.

    `lifeguard` is the paper's full Lifeguard (memberlist's rules); `lifeguard-looplag` is
    swimguard's default: Lifeguard plus its local-health extensions, the loop-lag input (timer
    lateness raises the health score), health-scaled suspicion timeouts and slow refresh.
    """
    base = Config.lan(
        suspicion_mult=alpha, suspicion_max_timeout_mult=beta, enable_compression=compression
    )
    off = {"lha_probe": False, "lha_suspicion": False, "buddy_system": False}
    switches: dict[str, dict[str, bool]] = {
        "swim": {},
        "lha-probe": {"lha_probe": True},
        "lha-suspicion": {"lha_suspicion": True},
        "buddy": {"buddy_system": True},
        "lifeguard": {"lha_probe": True, "lha_suspicion": True, "buddy_system": True},
        "lifeguard-looplag": {"lha_probe": True, "lha_suspicion": True, "buddy_system": True},
    }
    if name not in switches:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(CONFIG_NAMES)}")
    values: dict[str, Any] = {
        **off,
        **switches[name],
        "loop_lag_health": name == "lifeguard-looplag",
        "health_scaled_suspicion": name == "lifeguard-looplag",
        "slow_refresh_interval": base.slow_refresh_interval if name == "lifeguard-looplag" else 0.0,
    }
    return dataclasses.replace(base, **values)


@dataclasses.dataclass(frozen=True, slots=True)
class AnomalyModel:
    """How an anomalous member misbehaves: slow episodes of `on` seconds every `on + off`.

    `slow` is a SlowSpec text (see `sim/slow.py`): by default each input waits an
    exponentially distributed delay (mean 2 s) in one FIFO queue, and each timer fires late
    by an independent draw of the same delay.
    """

    slow: str = "exp:2"
    on: tuple[float, float] = (30.0, 90.0)
    off: tuple[float, float] = (5.0, 20.0)

    def spec(self) -> SlowSpec:
        """The parsed slow-member behaviour."""
        return parse_slow(self.slow)

    def __str__(self) -> str:
        return (
            f"slow={self.slow} on=U({self.on[0]:g},{self.on[1]:g})s "
            f"off=U({self.off[0]:g},{self.off[1]:g})s"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything that defines one run (picklable, so runs can go to worker processes)."""

    config: str
    anomalies: int
    seed: int
    members: int = 100
    duration: float = 300.0
    alpha: int = 5
    beta: int = 6
    anomaly: AnomalyModel = AnomalyModel()
    crash_interval: float = 60.0
    settle: float = 60.0

    def replay(self) -> str:
        """The command that reruns exactly this run."""
        return (
            f"python -m swimguard.sim.runner lifeguard --members {self.members} "
            f"--anomalies {self.anomalies} --duration {self.duration:g} --seeds 1 "
            f"--first-seed {self.seed} --configs {self.config} --alpha {self.alpha} "
            f"--beta {self.beta} --slow {self.anomaly.slow} "
            f"--slow-on {self.anomaly.on[0]:g},{self.anomaly.on[1]:g} "
            f"--slow-off {self.anomaly.off[0]:g},{self.anomaly.off[1]:g} --out /tmp/replay"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class RunResult:
    """One row of results.csv."""

    config: str
    anomalies: int
    seed: int
    members: int
    duration_s: float
    fp_total: int
    fp_healthy: int
    fp_at_healthy: int
    fp_observed: int
    false_suspicions: int
    crashes: int
    detect_first_s: float
    detect_full_s: float
    msgs_per_member_s: float
    bytes_per_member_s: float
    settle_s: float
    wall_s: float
    # Last and defaulted so that rows written before it existed still load (--resume).
    fp_deaths: int = -1
    # The classes of fp_total (report.py): about never-slowed members (= fp_healthy), about
    # slowed members that could have refuted, about members unresponsive for the timeout.
    fp_responsive: int = -1
    fp_unresponsive: int = -1


def _anomaly_schedule(
    rng: random.Random, names: Sequence[str], start: float, end: float, model: AnomalyModel
) -> list[tuple[float, str, bool]]:
    """(time, member, slow?) toggles; each member starts at a random phase of its cycle."""
    toggles: list[tuple[float, str, bool]] = []
    for name in names:
        t = start + rng.uniform(0.0, model.off[1])
        while t < end:
            on = rng.uniform(*model.on)
            toggles.append((t, name, True))
            toggles.append((min(t + on, end), name, False))
            t += on + rng.uniform(*model.off)
    toggles.sort(key=lambda x: (x[0], x[1]))
    return toggles


def run_one(spec: RunSpec) -> RunResult:
    """Run one (configuration, anomalies, seed) and measure it.

    Any failure is re-raised as `SimulationFailed` naming the seed and the replay command.
    """
    try:
        return _run_one(spec)
    except InvariantViolation:
        raise
    except Exception as exc:
        raise SimulationFailed(
            f"run {spec.config} anomalies={spec.anomalies} seed={spec.seed} failed: {exc!r}\n"
            f"  replay: {spec.replay()}"
        ) from exc


class SimulationFailed(RuntimeError):
    """A simulation run crashed; the message carries the seed and the replay command."""


def _run_one(spec: RunSpec) -> RunResult:
    wall = time.perf_counter()
    config = experiment_config(spec.config, alpha=spec.alpha, beta=spec.beta)
    n = spec.members
    cluster = start_cluster(
        n,
        seed=spec.seed,
        config=config,
        join_spread=min(10.0, 0.05 * n),
        replay_hint=spec.replay(),
    )
    cluster.run_until_true(lambda: not convergence_gaps(cluster), cluster.now + spec.settle, 1.0)
    settle = cluster.now
    attach_all(cluster, config.gossip_to_the_dead_time)
    metrics = FailureMetrics(cluster, start=settle)
    cluster.add_listener(metrics)
    load = LoadWindow(cluster)
    end = settle + spec.duration

    # Independent of the configuration: the same victims and episodes for every config.
    rng = random.Random(f"lifeguard/{spec.seed}/{spec.anomalies}/{n}")
    candidates = [f"m{i}" for i in range(1, n)]
    slow_names = sorted(rng.sample(candidates, min(spec.anomalies, len(candidates))))
    healthy = [name for name in candidates if name not in slow_names]
    slow_spec = spec.anomaly.spec()
    for t, name, on in _anomaly_schedule(rng, slow_names, settle, end, spec.anomaly):
        cluster.at(t, cluster.set_slow, name, slow_spec if on else None)
    # Crashes leave at least 1.5 max suspicion timeouts for full detection before the end.
    margin = 1.5 * spec.beta * spec.alpha * max(1.0, math.log10(n)) * config.probe_interval
    t = settle + min(30.0, spec.crash_interval / 2)
    while t <= end - margin and healthy:
        victim = healthy.pop(rng.randrange(len(healthy)))
        cluster.at(t, metrics.crash, victim)
        t += spec.crash_interval

    cluster.run_until(end)
    metrics.finish()
    msgs, sent = load.rates()
    return RunResult(
        config=spec.config,
        anomalies=spec.anomalies,
        seed=spec.seed,
        members=n,
        duration_s=spec.duration,
        fp_total=metrics.fp_total,
        fp_healthy=metrics.fp_healthy,
        fp_at_healthy=metrics.fp_at_healthy,
        fp_observed=metrics.fp_observed,
        false_suspicions=metrics.false_suspicions,
        crashes=len(metrics.crashes),
        detect_first_s=round(metrics.detect_first(), 4),
        detect_full_s=round(metrics.detect_full(), 4),
        msgs_per_member_s=round(msgs, 4),
        bytes_per_member_s=round(sent, 2),
        settle_s=round(settle, 3),
        wall_s=round(time.perf_counter() - wall, 3),
        fp_deaths=metrics.fp_deaths,
        fp_responsive=metrics.fp_responsive,
        fp_unresponsive=metrics.fp_unresponsive,
    )


def run_many(
    specs: Sequence[RunSpec],
    *,
    jobs: int = 1,
    progress: Callable[[int, int, RunResult], None] | None = None,
) -> list[RunResult]:
    """Run `specs` (in worker processes when jobs > 1); results keep the order of `specs`."""
    results: list[RunResult] = []
    iterator: Iterator[RunResult]
    if jobs <= 1:
        iterator = map(run_one, specs)
        for result in iterator:
            results.append(result)
            if progress is not None:
                progress(len(results), len(specs), result)
        return results
    workers = min(jobs, os.cpu_count() or 1, len(specs)) or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(run_one, specs):
            results.append(result)
            if progress is not None:
                progress(len(results), len(specs), result)
    return results
