"""Mass join with real processes: `python -m bench.mass_join --real --members 100`.

Issue 17, target 1, the real-process half. For each implementation in `--impls` (default
serf, then swimguard; `mixed` alternates the two), in one run: N agents on 127.0.0.1 with
the LAN profile, started in batches of `--batch` (default 25). Agent 0 starts alone; every
later agent joins ONE RANDOM agent of an earlier batch (all of those are up). A batch is
spawned at once, then we wait until each of its agents answers RPC before the next one.

Convergence: the time, counted from the moment the last agent answered RPC, at which a full
scan finds every agent's RPC `members` listing all N alive (serf's own RPC, and our
Serf-compatible one, read by the same client). A scan of 100 agents takes a while on a
loaded machine: that is the resolution (the scan time is reported). Also reported: the
median over agents of the time each was first seen complete, and the agents' CPU seconds
over the run. Serf runs without an event handler, so no shell forks per event load it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from bench.procs import LOOPBACK, _port_free
from bench.serf_harness import SERF, Proc, SerfRPC, wait_for

IMPLS = ("serf", "swimguard", "mixed")


def _serf_argv(name: str, port: int, rpc: int, seed: int | None) -> list[str]:
    assert SERF is not None
    argv = [
        SERF,
        "agent",
        f"-node={name}",
        f"-bind=127.0.0.1:{port}",
        f"-rpc-addr=127.0.0.1:{rpc}",
        "-profile=lan",
        "-log-level=warn",
    ]
    if seed is not None:
        argv.append(f"-join=127.0.0.1:{seed}")
    return argv


def _swim_argv(name: str, port: int, rpc: int, seed: int | None) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "swimguard",
        "agent",
        "--name",
        name,
        "--bind",
        f"127.0.0.1:{port}",
        "--rpc-addr",
        f"127.0.0.1:{rpc}",
        "--profile",
        "lan",
        "--log-level",
        "WARNING",
    ]
    if seed is not None:
        # --retry-join, not --join: in this session 24 agents joining one swimguard seed at
        # once got a connection reset for some of them and `--join` makes an agent exit
        # then (serf's -join coped). Retrying every second keeps the storm's shape.
        argv += ["--retry-join", f"127.0.0.1:{seed}", "--retry-interval", "1"]
    return argv


def _storm_ports(count: int, rng: random.Random) -> list[int]:
    """`count` ports free now, below Linux's ephemeral range (32768+): ports the kernel
    hands out are also the source ports of the storm's own TCP connections, and one of
    them took an agent's port before it started in a 100-agent run."""
    chosen: list[int] = []
    port = rng.randrange(10000, 20000)
    while len(chosen) < count:
        port += 1
        if port >= 32768:
            raise RuntimeError("no free ports below the ephemeral range")
        if _port_free(LOOPBACK, port):
            chosen.append(port)
    return chosen


def _statuses(rpc_port: int) -> dict[str, str] | None:
    try:
        with SerfRPC(rpc_port, timeout=5.0) as rpc:
            return rpc.statuses()
    except (OSError, ValueError, KeyError):
        return None


def run_storm(impl: str, n: int, *, batch: int, seed: int, cap: float, workdir: Path) -> dict:
    """Start the storm for one implementation, wait for convergence, stop everything."""
    rng = random.Random(f"{seed}/mass_join_real")
    ports = _storm_ports(2 * n, rng)
    names = [f"{impl[:2]}{i}" for i in range(n)]
    kinds = [
        ("serf" if impl == "serf" or (impl == "mixed" and i % 2 == 0) else "swimguard")
        for i in range(n)
    ]
    procs: list[Proc] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    up_at: list[float] = [0.0] * n
    t0 = time.time()

    def start(i: int, seed_index: int | None) -> None:
        port, rpc = ports[2 * i], ports[2 * i + 1]
        seed_port = None if seed_index is None else ports[2 * seed_index]
        make: Callable[[str, int, int, int | None], list[str]] = (
            _serf_argv if kinds[i] == "serf" else _swim_argv
        )
        proc = Proc(f"{impl}-{names[i]}", make(names[i], port, rpc, seed_port), workdir, env)
        procs.append(proc)

        def answers() -> bool:
            if not proc.alive:
                raise RuntimeError(f"{names[i]} exited: {proc.stderr_text()[-2000:]}")
            return _statuses(rpc) is not None

        wait_for(answers, 120, 0.1, f"{names[i]} RPC")
        up_at[i] = time.time()

    try:
        start(0, None)
        with ThreadPoolExecutor(max_workers=batch) as pool:
            first = 1
            while first < n:
                last = min(n, first + batch)
                seeds = [rng.randrange(first) for _ in range(first, last)]
                list(pool.map(start, range(first, last), seeds))
                first = last
        all_up = max(up_at)
        rpc_ports = [ports[2 * i + 1] for i in range(n)]
        complete_at: list[float | None] = [None] * n
        converged_at = None
        scans = []
        while time.time() < all_up + cap:
            scan_start = time.time()
            done = 0
            for i, rp in enumerate(rpc_ports):
                view = _statuses(rp)
                ok = view is not None and sum(1 for s in view.values() if s == "alive") >= n
                if ok:
                    done += 1
                    if complete_at[i] is None:
                        complete_at[i] = time.time()
            scans.append(time.time() - scan_start)
            if done == n:
                converged_at = time.time()
                break
            time.sleep(0.2)
        cpu = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(p.pid).cpu_times()
                cpu += times.user + times.system
        seen = [t - all_up for t in complete_at if t is not None]
        return {
            "impl": impl,
            "members": n,
            "batch": batch,
            "start_span_s": round(all_up - t0, 2),
            "converged": converged_at is not None,
            "converge_after_last_start_s": (
                None if converged_at is None else round(converged_at - all_up, 2)
            ),
            "median_agent_complete_s": round(statistics.median(seen), 2) if seen else None,
            "agents_complete": len(seen),
            "scan_s_median": round(statistics.median(scans), 2) if scans else None,
            "agents_cpu_s": round(cpu, 1),
        }
    finally:
        for p in reversed(procs):
            with contextlib.suppress(Exception):
                p.stop(timeout=3.0)


def main(argv: list[str] | None = None) -> int:
    """Run the storms; 1 when an implementation did not converge within the cap."""
    parser = argparse.ArgumentParser(prog="python -m bench.mass_join --real", description=__doc__)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--impls", default="serf,swimguard", help=f"comma list of {IMPLS}")
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cap", type=float, default=600.0, help="give up after (wall s)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv if argv is not None else [])
    impls = [i for i in args.impls.split(",") if i]
    bad = [i for i in impls if i not in IMPLS]
    if bad:
        parser.error(f"unknown impl {bad}; choose from {IMPLS}")
    if SERF is None and any(i != "swimguard" for i in impls):
        print("mass_join --real: serf is not installed", file=sys.stderr)
        return 1
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="swimguard-massjoin-"))
    try:
        for impl in impls:
            print(f"mass_join --real: {impl} N={args.members} ...", file=sys.stderr, flush=True)
            row = run_storm(
                impl, args.members, batch=args.batch, seed=args.seed, cap=args.cap, workdir=workdir
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    by = {r["impl"]: r for r in rows}
    if "serf" in by and "swimguard" in by:
        a, b = by["swimguard"], by["serf"]
        if a["converged"] and b["converged"] and b["converge_after_last_start_s"]:
            print(
                "convergence after the last start, swimguard/serf: "
                f"{a['converge_after_last_start_s'] / b['converge_after_last_start_s']:.2f}"
            )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"mass_join_real_{args.members}.json").write_text(
            json.dumps(rows, indent=1) + "\n"
        )
    return 0 if all(r["converged"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
