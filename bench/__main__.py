"""Run every benchmark module that exists, in order: `python -m bench [NAME...]`.

Modules: bench.wire_bench, bench.cluster_bench, bench.interop_bench, bench.sim_scale,
bench.cli_latency, bench.agent_rss, bench.mass_join, each exposing `main(argv=None)` (or
`main()`). Missing modules are skipped and said so; a sub-bench that raises or returns
non-zero is reported and the run goes on, but the exit status is then 1. With names on the
command line, only those run (each with defaults).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

BENCHES = (
    "wire_bench", "cluster_bench", "interop_bench", "sim_scale", "cli_latency", "agent_rss",
    "mass_join",
)


def _load(name: str) -> Callable[..., Any] | None:
    """The module's main, or None when bench.<name> does not exist."""
    full = f"bench.{name}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return None
        raise
    entry: object = getattr(module, "main", None)
    if not callable(entry):
        raise AttributeError(f"{full} has no main()")
    return entry


def _call(entry: Callable[..., Any]) -> int:
    """Call main with an empty argv when it takes one (so it ignores our own argv)."""
    try:
        takes_argv = bool(inspect.signature(entry).parameters)
    except (TypeError, ValueError):
        takes_argv = False
    try:
        rc = entry([]) if takes_argv else entry()
    except SystemExit as exc:
        code = exc.code
        return 0 if code is None else (code if isinstance(code, int) else 1)
    return rc if isinstance(rc, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected (default: all existing) sub-benchmarks; 1 if any failed."""
    names = list(argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown bench {unknown}; choose from {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    outcome: list[tuple[str, str]] = []
    for name in names:
        t0 = time.monotonic()
        print(f"==> bench.{name}", flush=True)
        try:
            entry = _load(name)
            if entry is None:
                outcome.append((name, "not present, skipped"))
                print(f"bench.{name}: not present, skipped", flush=True)
                continue
            rc = _call(entry)
            status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        except KeyboardInterrupt:
            raise
        except Exception:  # a broken sub-bench must not stop the others
            traceback.print_exc()
            status = "FAILED (exception)"
        outcome.append((name, f"{status} in {time.monotonic() - t0:.0f} s"))
    print("==> summary", flush=True)
    for name, status in outcome:
        print(f"  bench.{name}: {status}", flush=True)
    return 1 if any("FAILED" in s for _, s in outcome) else 0


if __name__ == "__main__":
    sys.exit(main())
