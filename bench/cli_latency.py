"""CLI latency: `swimguard members` vs `serf members`, end to end (issue 17, target 4).

One swimguard agent and one serf agent run on 127.0.0.1, joined to each other (so both list
the same two members). Then, interleaved round by round so that the machine's load hits
both alike, each client command is run as a user runs it (a new process, its output read to
the end):

- `swimguard members -rpc-addr <swimguard agent>` (the `swimguard` console script);
- `serf members -rpc-addr <serf agent>`;
- `serf members -rpc-addr <swimguard agent>` and `swimguard members -rpc-addr <serf agent>`
  (each client against the other agent, to tell the client's cost from the server's);
- `python -c pass` (the interpreter's start: the floor any Python command pays).

It prints the median wall time of each, and the ratio swimguard/serf (target: <= 2).
`--compare-src DIR` adds `swimguard members` run from another source tree (e.g. a copy of
an older `src/`) to the same rounds, for a before/after measured in one run.

Run: `python -m bench.cli_latency [--runs 30] [--compare-src DIR]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.serf_harness import SERF, Cluster, free_port

__all__ = ["main"]


def swimguard_command() -> list[str]:
    """The `swimguard` console script of this interpreter's environment (`-m` if absent)."""
    script = Path(sys.executable).with_name("swimguard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "swimguard"]


def time_run(argv: Sequence[str], env: Mapping[str, str]) -> float:
    """Seconds from spawn to exit; the command must succeed (a failing one is no latency)."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=dict(env), timeout=60, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_latency", description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="rounds (each runs every command)")
    parser.add_argument("--compare-src", type=Path, help="another src/ to time side by side")
    args = parser.parse_args(argv)
    if SERF is None:
        print("bench.cli_latency: serf is not installed (make serf): skipped")
        return 0
    env = dict(os.environ)
    with Cluster() as cluster:
        swim_rpc = free_port()
        serf = cluster.start_serf("serf-0")
        cluster.start_swim(
            "swim-0", join=[serf.addr], extra=["--rpc-addr", f"127.0.0.1:{swim_rpc}"]
        )
        swim_addr = f"-rpc-addr=127.0.0.1:{swim_rpc}"
        serf_addr = f"-rpc-addr=127.0.0.1:{serf.rpc_port}"
        ours = swimguard_command()
        commands: dict[str, tuple[list[str], Mapping[str, str]]] = {
            "swimguard members -> swimguard agent": ([*ours, "members", swim_addr], env),
            "serf members -> serf agent": ([SERF, "members", serf_addr], env),
            "swimguard members -> serf agent": ([*ours, "members", serf_addr], env),
            "serf members -> swimguard agent": ([SERF, "members", swim_addr], env),
            "python -c pass (interpreter floor)": ([sys.executable, "-c", "pass"], env),
        }
        if args.compare_src is not None:
            other = dict(env, PYTHONPATH=str(args.compare_src.resolve()))
            commands[f"swimguard members ({args.compare_src}) -> swimguard agent"] = (
                [*ours, "members", swim_addr], other
            )
        # Both agents must list both members before timing: equal work for both clients.
        for command, command_env in commands.values():
            time_run(command, command_env)
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, (command, command_env) in commands.items():
                times[label].append(time_run(command, command_env))
    medians = {label: statistics.median(values) for label, values in times.items()}
    width = max(map(len, medians))
    print(f"CLI latency, median of {args.runs} interleaved runs (wall time, loaded machine:"
          " compare ratios, not absolute figures)")
    for label, value in medians.items():
        print(f"  {label:<{width}}  {value * 1000:7.1f} ms")
    ratio = medians["swimguard members -> swimguard agent"] / medians["serf members -> serf agent"]
    print(f"  ratio swimguard/serf (each against its own agent): {ratio:.2f}x (target <= 2)")
    if shutil.which("nproc"):
        print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
