"""`swimguard sim map`: run the anomaly map (see `anomaly_map.py`) and write its outputs.

    swimguard sim map --out results/map [--jobs 2] [--resume]      # the full grid
    swimguard sim map --dists exp --means 0.5,8 --episodes 1-4,permanent --anomalies 4 ...

Every finished run is appended to OUT/results.partial.jsonl, so an interrupted map resumes
with `--resume` (runs are deterministic: nothing is run twice).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from swimguard.sim.anomaly_map import DelayKind, Episodes, MapGrid, MapRow
from swimguard.sim.experiment import CONFIG_NAMES, RunResult, SimulationFailed, run_many
from swimguard.sim.invariants import InvariantViolation

__all__ = ["add_parser", "run"]

T = TypeVar("T")


def _list_of(parse: Callable[[str], T], what: str) -> Callable[[str], tuple[T, ...]]:
    def convert(text: str) -> tuple[T, ...]:
        try:
            values = tuple(parse(v.strip()) for v in text.split(",") if v.strip())
        except (ValueError, KeyError):
            problem = f"expected comma-separated {what}, got {text!r}"
            raise argparse.ArgumentTypeError(problem) from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one of {what}")
        return values

    return convert


def _mean(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise ValueError(text)
    return value


def _anomalies(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _config(text: str) -> str:
    if text not in CONFIG_NAMES:
        raise ValueError(text)
    return text


def _flag(yes: str, no: str) -> Callable[[str], bool]:
    def parse(text: str) -> bool:
        if text not in (yes, no):
            raise ValueError(text)
        return text == yes

    return parse


def add_parser(sub: Any) -> None:
    """Add the `map` subcommand to the `swimguard sim` subparsers `sub`."""
    grid = MapGrid()
    p = sub.add_parser(
        "map",
        help="Lifeguard across a grid of gray-failure shapes (ratios to SWIM, heatmaps)",
        description="Sweep delay distribution, episode length, late timers, FIFO and anomaly "
        "count; run each configuration in each cell on the same seeds; write results.csv, "
        "cells.csv, results.json, map.md and one heatmap PNG per metric.",
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    kinds = ",".join(k.value for k in DelayKind)
    p.add_argument("--dists", type=_list_of(DelayKind, kinds), default=grid.dists,
                   help=f"delay distributions ({kinds}; default all)")
    p.add_argument("--means", type=_list_of(_mean, "seconds > 0"), default=grid.means,
                   help="mean delays in seconds (default %(default)s)")
    spans = ",".join(e.value for e in Episodes)
    p.add_argument("--episodes", type=_list_of(Episodes, spans), default=grid.episodes,
                   help=f"slow episode lengths ({spans}; default all)")
    p.add_argument("--timers", type=_list_of(_flag("late", "on-time"), "late,on-time"),
                   default=grid.timers_late, help="slow members' timers late, on time, or both")
    p.add_argument("--fifo", type=_list_of(_flag("fifo", "no-fifo"), "fifo,no-fifo"),
                   default=grid.fifo, help="inputs in one FIFO queue, reordered, or both")
    p.add_argument("--anomalies", type=_list_of(_anomalies, "integers >= 1"),
                   default=grid.anomalies, help="slow members per cell (default %(default)s)")
    p.add_argument("--configs", type=_list_of(_config, ",".join(CONFIG_NAMES)),
                   default=grid.configs, help="configurations (swim is the baseline, always run)")
    p.add_argument("--members", type=int, default=grid.members)
    p.add_argument("--duration", type=float, default=grid.duration,
                   help="virtual seconds per run (default %(default)s)")
    p.add_argument("--seeds", type=int, default=len(grid.seeds), help="runs per cell and config")
    p.add_argument("--first-seed", type=int, default=grid.seeds[0])
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the runs already in OUT/results.partial.jsonl")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: write the outputs from the runs already in "
                   "OUT/results.partial.jsonl (e.g. of a map still running or interrupted)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true",
                   help="tables only, no heatmaps (which need matplotlib: the sim extra)")


def grid_from(args: argparse.Namespace) -> MapGrid:
    """The grid the arguments describe (SWIM always included: it is the baseline)."""
    configs = tuple(dict.fromkeys(("swim", *args.configs)))
    return MapGrid(
        dists=args.dists,
        means=args.means,
        episodes=args.episodes,
        timers_late=args.timers,
        fifo=args.fifo,
        anomalies=args.anomalies,
        configs=configs,
        members=args.members,
        duration=args.duration,
        seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
    )


def _problem(args: argparse.Namespace) -> str | None:
    if args.members < 3:
        return f"--members {args.members}: must be at least 3"
    if max(args.anomalies) >= args.members:
        return f"--anomalies {max(args.anomalies)}: must be fewer than --members"
    if not 0 < args.duration < math.inf:
        return f"--duration {args.duration:g}: must be a finite number of virtual seconds > 0"
    if args.seeds < 1:
        return f"--seeds {args.seeds}: must be at least 1"
    if args.jobs < 1:
        return f"--jobs {args.jobs}: must be at least 1"
    return None


def load_rows(path: Path) -> list[MapRow]:
    """The runs recorded in a results.partial.jsonl."""
    return [MapRow.from_json(json.loads(line)) for line in path.read_text().splitlines()
            if line.strip()]


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the map the arguments describe; 0 on success, 1 on a broken run, 2 on bad usage."""
    from swimguard.sim.runner import ProgressBar, plot_unavailable

    if plot_unavailable("map", args):
        return 2
    problem = _problem(args)
    if problem is not None:
        print(f"swimguard sim map: error: {problem}", file=sys.stderr)
        return 2
    grid = grid_from(args)
    specs = list(grid.specs())
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "results.partial.jsonl"
    done: dict[tuple[str, str, int], MapRow] = {}
    if args.report_only:
        return _report_only(args, argv, grid)
    if args.resume and partial.exists():
        try:
            for row in load_rows(partial):
                done[row.key] = row
        except (ValueError, KeyError, TypeError) as exc:
            print(f"swimguard sim map: cannot resume from {partial}: {exc!r}", file=sys.stderr)
            return 2
    elif not args.resume:
        partial.write_text("")
    todo = [(cell, spec) for cell, spec in specs
            if (cell.key, spec.config, spec.seed) not in done]
    bar = None if args.quiet else ProgressBar(len(todo))
    started = time.perf_counter()

    def progress(count: int, total: int, result: RunResult) -> None:
        # run_many keeps the order of its input, so the count names the cell.
        row = MapRow(todo[count - 1][0], result)
        done[row.key] = row
        with partial.open("a") as f:
            f.write(json.dumps(row.to_json()) + "\n")
        if bar is not None:
            bar.update(count, f"({row.cell.key} {result.config} s={result.seed})")

    try:
        run_many([spec for _, spec in todo], jobs=args.jobs, progress=progress)
    except (InvariantViolation, SimulationFailed) as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    rows = [done[(cell.key, spec.config, spec.seed)] for cell, spec in specs]
    return _write(args, argv, grid, rows, time.perf_counter() - started)


def _report_only(args: argparse.Namespace, argv: Sequence[str], grid: MapGrid) -> int:
    partial = args.out / "results.partial.jsonl"
    try:
        rows = load_rows(partial)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"swimguard sim map: cannot read {partial}: {exc!r}", file=sys.stderr)
        return 2
    # Only cells whose SWIM run is there can be compared.
    with_swim = {(r.cell.key, r.result.seed) for r in rows if r.result.config == "swim"}
    rows = [r for r in rows if (r.cell.key, r.result.seed) in with_swim]
    return _write(args, argv, grid, rows, 0.0)


def _write(
    args: argparse.Namespace,
    argv: Sequence[str],
    grid: MapGrid,
    rows: list[MapRow],
    wall: float,
) -> int:
    from swimguard.sim.map_output import map_markdown, write_map

    meta = {
        **{k: v for k, v in dataclasses.asdict(grid).items()
           if k in ("members", "duration", "seeds", "configs", "crash_interval")},
        "cells": len({r.cell for r in rows}),
        "cells_in_grid": len(grid.cells()),
        "command": "swimguard sim " + " ".join(argv),
        "wall_s": round(wall, 1),
        "cpu_s_of_runs": round(sum(r.result.wall_s for r in rows), 1),
    }
    paths = write_map(args.out, rows, meta, plot_png=not args.no_plot)
    text = map_markdown(rows, meta)
    print(text.split("## Every cell")[0].rstrip())
    for path in paths:
        print(f"wrote {path}")
    return 0
