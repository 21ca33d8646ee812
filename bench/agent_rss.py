"""Idle agent RSS: `swimguard agent` vs `serf agent`, 3-member clusters (issue 17, target 3).

Each cluster type runs on 127.0.0.1 with its default flags (serf compatibility, RPC on,
no key, no metrics): three members, the second and third joined to the first. Once every
member lists all three, the clusters idle for `--settle` seconds, then each agent's VmRSS
(/proc/PID/status) is sampled `--samples` times, one second apart; the median per cluster
type is printed with the ratio to serf. The floor is also printed: the RSS of this
interpreter started with nothing to do (`python -c ...`), which no Python agent can go
below.

`--compare-src DIR` adds a third cluster run from another source tree (e.g. a copy of an
older `src/`): a before/after measured side by side in one run. All clusters run at the
same time, so the machine's state is the same for all (absolute figures still depend on
the machine; compare within one run).

Run: `python -m bench.agent_rss [--settle 10] [--compare-src DIR]`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.serf_harness import SERF, Cluster, SwimAgent, free_port, wait_for

__all__ = ["main", "vm_rss_kib"]

TARGET_MIB = 18.0


def vm_rss_kib(pid: int) -> int:
    """The process's resident set size in KiB, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for pid {pid}")


def interpreter_floor_kib() -> int:
    """VmRSS of this interpreter started with nothing to do (site imported, as always)."""
    code = "import re;print(re.search(r'VmRSS:\\s+(\\d+)',open('/proc/self/status').read())[1])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    return int(out.stdout)


@contextlib.contextmanager
def _pythonpath(path: Path | None) -> Iterator[None]:
    """Agents spawned inside see `path` first on PYTHONPATH (None: unchanged)."""
    saved = os.environ.get("PYTHONPATH")
    if path is not None:
        os.environ["PYTHONPATH"] = str(path.resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _sees_all(agent: SwimAgent, count: int) -> bool:
    return len(agent.view()) >= count


def _mib(kib: float) -> str:
    return f"{kib / 1024:6.1f} MiB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_rss", description=__doc__)
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds before sampling")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--compare-src", type=Path, help="another src/ to run side by side")
    args = parser.parse_args(argv)
    names = ("a", "b", "c")
    pids: dict[str, list[int]] = {}
    with Cluster() as cluster:
        trees: dict[str, Path | None] = {"swimguard": None}
        if args.compare_src is not None:
            trees[f"swimguard ({args.compare_src})"] = args.compare_src
        for label, tree in trees.items():
            with _pythonpath(tree):
                first = None
                pids[label] = []
                for name in names:
                    # Default flags, RPC included (on a free port: several agents share 7373).
                    extra = ["--rpc-addr", f"127.0.0.1:{free_port()}"]
                    agent = cluster.start_swim(
                        f"sg{len(pids)}-{name}", join=[first] if first else [],
                        extra=extra, profile="lan",
                    )
                    first = first or agent.addr
                    pids[label].append(agent.proc.pid)
        if SERF is not None:
            first = None
            pids["serf"] = []
            for name in names:
                serf = cluster.start_serf(f"serf-{name}", join=[first] if first else [],
                                          profile="lan", log_level="info")
                first = first or serf.addr
                pids["serf"].append(serf.proc.pid)
        for agent in cluster.swim.values():
            wait_for(functools.partial(_sees_all, agent, len(names)), 30, 0.1,
                     f"{agent.name} sees all")
        if SERF is not None:
            wait_for(lambda: cluster.serf_all_alive([f"serf-{n}" for n in names]), 30, 0.1,
                     "serf cluster converged")
        time.sleep(args.settle)
        samples: dict[str, list[int]] = {label: [] for label in pids}
        for _ in range(args.samples):
            for label, group in pids.items():
                samples[label].extend(vm_rss_kib(pid) for pid in group)
            time.sleep(1.0)
    floor = interpreter_floor_kib()
    medians = {label: statistics.median(values) for label, values in samples.items()}
    width = max(len(label) for label in medians)
    print(f"Idle agent RSS (VmRSS), median over 3 agents x {args.samples} samples after"
          f" {args.settle:.0f} s idle; target <= {TARGET_MIB:.0f} MiB")
    for label, value in medians.items():
        print(f"  {label:<{width}}  {_mib(value)}")
    print(f"  {'python floor':<{width}}  {_mib(floor)}  (`python -c`: the interpreter alone)")
    if "serf" in medians:
        print(f"  ratio swimguard/serf: {medians['swimguard'] / medians['serf']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
