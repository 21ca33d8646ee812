"""`swimguard sim ...`: the Lifeguard experiment and the scenario runner.

    swimguard sim lifeguard --members 100 --anomalies 1,4,8,16,32 --duration 300 --seeds 5 --out DIR
    swimguard sim map --out DIR [--jobs 2] [--resume]   (the anomaly map, see sim/map_cli.py)
    swimguard sim run SCENARIO_FILE [--seed N] [--json]

(`python -m swimguard.sim.runner ...` works the same.) Exit status: 0 on success, 1 when a
simulation broke an invariant (the seed and the replay command are printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from swimguard.sim import map_cli
from swimguard.sim.experiment import (
    CONFIG_NAMES,
    AnomalyModel,
    RunResult,
    RunSpec,
    SimulationFailed,
    run_many,
)
from swimguard.sim.faults import ScenarioError, parse_scenario
from swimguard.sim.invariants import InvariantViolation, attach_all, convergence_gaps
from swimguard.sim.report import FailureMetrics, member_report
from swimguard.sim.scenarios import run_scenario_spec
from swimguard.sim.slow import parse_slow

__all__ = ["ProgressBar", "main"]


class ProgressBar:
    """A one-line progress bar with an ETA on a text stream (stderr by default)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.monotonic()

    def update(self, done: int, note: str = "") -> None:
        """Redraw for `done` of `total` items finished."""
        frac = done / self.total if self.total else 1.0
        filled = int(self.width * frac)
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (self.total - done) if done else math.nan
        eta_text = "?" if math.isnan(eta) else f"{eta / 60:.1f}m"
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r[{bar}] {done}/{self.total} runs, {elapsed / 60:.1f}m elapsed, "
            f"eta {eta_text} {note}\x1b[K"
        )
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("expected one or more non-negative integers")
    return values


def _config_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in CONFIG_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CONFIG_NAMES)}"
        )
    return names


def _slow_text(text: str) -> str:
    try:
        parse_slow(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _span(text: str) -> tuple[float, float]:
    """``MIN,MAX`` seconds (0 <= MIN <= MAX) for the slow episodes and the gaps between them."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX seconds, got {text!r}") from None
    if not 0.0 <= low <= high or not math.isfinite(high):
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX (finite), got {text!r}")
    return (low, high)


def build_parser() -> argparse.ArgumentParser:
    """The `swimguard sim` argument parser."""
    parser = argparse.ArgumentParser(
        prog="swimguard sim", description="deterministic simulations driving the real core"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    lg = sub.add_parser("lifeguard", help="reproduce the Lifeguard paper's false-positive study")
    lg.add_argument("--members", type=int, default=100)
    lg.add_argument("--anomalies", type=_int_list, default=[1, 4, 8, 16, 32])
    lg.add_argument("--duration", type=float, default=300.0, help="virtual seconds per run")
    lg.add_argument("--seeds", type=int, default=5, help="runs per (config, anomalies)")
    lg.add_argument("--first-seed", type=int, default=1)
    lg.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    lg.add_argument("--configs", type=_config_list, default=list(CONFIG_NAMES))
    lg.add_argument("--alpha", type=int, default=5, help="SuspicionMult (paper: 5)")
    lg.add_argument("--beta", type=int, default=6, help="SuspicionMaxTimeoutMult (paper: 6)")
    lg.add_argument(
        "--slow",
        type=_slow_text,
        default=AnomalyModel().slow,
        help="slow-member delay: DIST[,notimers][,nofifo] (default %(default)s)",
    )
    model = AnomalyModel()
    for flag, span, what in (
        ("--slow-on", model.on, "length of a slow episode"),
        ("--slow-off", model.off, "healthy gap between episodes"),
    ):
        lg.add_argument(
            flag,
            type=_span,
            default=span,
            metavar="MIN,MAX",
            help=f"{what}, uniform in seconds (default {span[0]:g},{span[1]:g})",
        )
    lg.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    lg.add_argument("--quiet", action="store_true", help="no progress bar")
    lg.add_argument(
        "--no-plot",
        action="store_true",
        help="write the tables only, no lifeguard.png (which needs matplotlib: the sim extra)",
    )
    lg.add_argument(
        "--resume",
        action="store_true",
        help="reuse the runs already in OUT (results.partial.jsonl or results.json); runs are "
        "deterministic, so e.g. more --seeds only runs the new ones",
    )

    rep = sub.add_parser(
        "lifeguard-report",
        help="rebuild the outputs from OUT/results.partial.jsonl of an interrupted run",
    )
    rep.add_argument("--out", type=Path, required=True)
    rep.add_argument("--no-plot", action="store_true", help="write the tables only")

    map_cli.add_parser(sub)

    run = sub.add_parser("run", help="run a scenario file and report what each member saw")
    run.add_argument("scenario", type=Path)
    run.add_argument("--seed", type=int, default=None, help="override the file's seed")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def plot_unavailable(command: str, args: argparse.Namespace) -> bool:
    """Say so (one line) when the plot is wanted but matplotlib is not installed.

    Checked before any work: a study runs for minutes and must not die at its last step.
    """
    if args.no_plot:
        return False
    try:
        import matplotlib  # noqa: F401 - only whether it can be imported
    except ImportError:
        print(
            f"swimguard sim {command}: error: the plot needs matplotlib: install the sim extra"
            " (pip install 'swimguard[sim]'), or pass --no-plot to write the tables only",
            file=sys.stderr,
        )
        return True
    return False


def _lifeguard_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the study's numbers, naming the flag and the value; None if fine."""
    if args.members < 3:
        return f"--members {args.members}: must be at least 3"
    if not 0 < args.duration < math.inf:
        return f"--duration {args.duration:g}: must be a finite number of virtual seconds > 0"
    if args.seeds < 1:
        return f"--seeds {args.seeds}: must be at least 1"
    if args.jobs < 1:
        return f"--jobs {args.jobs}: must be at least 1"
    if args.slow_on[1] <= 0:
        return "--slow-on: must allow episodes longer than 0 s"
    return None


def _lifeguard(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if plot_unavailable("lifeguard", args):
        return 2
    problem = _lifeguard_problem(args)
    if problem is not None:
        print(f"swimguard sim lifeguard: error: {problem}", file=sys.stderr)
        return 2
    model = AnomalyModel(slow=args.slow, on=args.slow_on, off=args.slow_off)
    specs = [
        RunSpec(
            config=config,
            anomalies=a,
            seed=seed,
            members=args.members,
            duration=args.duration,
            alpha=args.alpha,
            beta=args.beta,
            anomaly=model,
        )
        # Seed outermost: an interrupted run still holds complete seeds (see --resume).
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        for a in args.anomalies
        for config in args.configs
    ]
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "results.partial.jsonl"  # every finished run, one JSON line each
    done: dict[tuple[str, int, int], RunResult] = {}
    if args.resume:
        previous = args.out / "results.json"
        if not partial.exists() and previous.exists():  # a finished run: start from its rows
            rows = json.loads(previous.read_text())["rows"]
            partial.write_text("".join(json.dumps(row) + "\n" for row in rows))
        if partial.exists():
            for result in load_partial(partial):
                done[(result.config, result.anomalies, result.seed)] = result
    else:
        partial.write_text("")
    todo = [s for s in specs if (s.config, s.anomalies, s.seed) not in done]
    bar = None if args.quiet else ProgressBar(len(todo))

    def progress(done: int, total: int, result: RunResult) -> None:
        with partial.open("a") as f:
            f.write(json.dumps(dataclasses.asdict(result)) + "\n")
        if bar is not None:
            bar.update(done, f"({result.config} a={result.anomalies} s={result.seed})")

    try:
        fresh = run_many(todo, jobs=args.jobs, progress=progress)
    except (InvariantViolation, SimulationFailed) as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    for result in fresh:
        done[(result.config, result.anomalies, result.seed)] = result
    results = [done[(s.config, s.anomalies, s.seed)] for s in specs]
    from swimguard.sim.lifeguard_output import summary_markdown, write_all

    meta = {
        "members": args.members,
        "anomalies": args.anomalies,
        "duration": args.duration,
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "configs": args.configs,
        "alpha": args.alpha,
        "beta": args.beta,
        "anomaly": str(model),
        "command": "swimguard sim " + " ".join(argv),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    paths = write_all(args.out, results, meta, plot_png=not args.no_plot)
    print(summary_markdown(results, meta))
    for path in paths:
        print(f"wrote {path}")
    return 0


def load_partial(path: Path) -> list[RunResult]:
    """The runs recorded (one JSON object a line) by an earlier, possibly interrupted, run."""
    results = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            for key in ("detect_first_s", "detect_full_s"):
                if row.get(key) is None:
                    row[key] = math.nan
            results.append(RunResult(**row))
    return results


def _lifeguard_report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from swimguard.sim.lifeguard_output import summary_markdown, write_all

    if plot_unavailable("lifeguard-report", args):
        return 2

    partial = args.out / "results.partial.jsonl"
    try:
        results = load_partial(partial)
    except (OSError, ValueError, TypeError) as exc:
        print(f"swimguard sim lifeguard-report: cannot read {partial}: {exc}", file=sys.stderr)
        return 2
    meta = {
        "members": sorted({r.members for r in results}),
        "anomalies": sorted({r.anomalies for r in results}),
        "duration": sorted({r.duration_s for r in results}),
        "seeds": sorted({r.seed for r in results}),
        "configs": sorted({r.config for r in results}),
        "alpha": "see the run",
        "beta": "see the run",
        "anomaly": "see the run",
        "command": "swimguard sim " + " ".join(argv) + " (rebuilt from an interrupted run)",
        "runs": len(results),
    }
    write_all(args.out, results, meta, plot_png=not args.no_plot)
    print(summary_markdown(results, meta))
    return 0


def _run_scenario(args: argparse.Namespace, argv: Sequence[str]) -> int:
    try:
        spec = parse_scenario(args.scenario.read_text())
    except (OSError, ScenarioError) as exc:
        print(f"swimguard sim run: {exc}", file=sys.stderr)
        return 2
    seed = spec.seed if args.seed is None else args.seed
    hint = f"swimguard sim run {args.scenario} --seed {seed}"
    try:
        cluster = run_scenario_spec(spec, seed=seed, replay_hint=hint)
        attach_all(cluster, spec.config.gossip_to_the_dead_time)
        metrics = FailureMetrics(cluster)
        cluster.add_listener(metrics)
        cluster.run_until(spec.duration)
    except InvariantViolation as exc:
        print(str(exc), file=sys.stderr)
        return 1
    rows = member_report(cluster)
    gaps = convergence_gaps(cluster)
    summary = {
        "seed": seed,
        "members": spec.members,
        "duration": spec.duration,
        "false_declarations": metrics.fp_total,
        "false_observations": metrics.fp_observed,
        "converged": not gaps,
        "disagreements": len(gaps),
        "network": {
            "sent": cluster.network.stats.sent,
            "lost": cluster.network.stats.lost,
            "blocked": cluster.network.stats.blocked,
            "duplicated": cluster.network.stats.duplicated,
        },
        "replay": hint,
    }
    if args.json:
        print(json.dumps({"summary": summary, "members": rows}, indent=1))
        return 0
    cols = [
        "name",
        "state",
        "alive",
        "suspect",
        "dead",
        "left",
        "health_score",
        "msgs_sent",
        "slow",
    ]
    print("  ".join(f"{c:>12}" for c in cols))
    for row in rows:
        print("  ".join(f"{row.get(c, '-')!s:>12}" for c in cols))
    print()
    for key, value in summary.items():
        print(f"{key}: {value}")
    for gap in gaps[:10]:
        print(f"  not converged: {gap}")
    return 0


def main(argv: list[str]) -> int:
    """Entry point for `swimguard sim ARGS` (argv excludes the program and `sim`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    if args.command == "lifeguard":
        return _lifeguard(args, argv)
    if args.command == "lifeguard-report":
        return _lifeguard_report(args, argv)
    if args.command == "map":
        return map_cli.run(args, argv)
    return _run_scenario(args, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
