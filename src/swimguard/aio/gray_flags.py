"""The `swimguard agent` flags of the injected gray failure (`aio.gray_fault`).

Same meaning as mlnode's `-slow*` flags (tools/mlnode), so one command line shape
drives a Go memberlist node and a swimguard agent through the same episodes; only the
seed flag is `--slow-seed` here (`--join`'s help already calls join addresses seeds).
For tests and benchmarks: off unless `--slow` is given.
"""

from __future__ import annotations

import argparse

from swimguard.aio.gray_fault import GrayFaultOptions

__all__ = ["add_arguments", "options_from"]


def _seconds_range(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"want MIN,MAX seconds, got {text!r}")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"want MIN,MAX seconds, got {text!r}") from None
    if not 0 <= low <= high < float("inf"):
        raise argparse.ArgumentTypeError(f"want 0 <= MIN <= MAX, got {text!r}")
    return low, high


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"want >= 0 seconds, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want an integer, got {text!r}") from None
    if not -(1 << 63) <= value < (1 << 63):
        raise argparse.ArgumentTypeError(f"want a 64-bit integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `--slow*` flags to the agent's parser, in their own help group."""
    group = parser.add_argument_group(
        "injected gray failure (tests and benchmarks; mlnode's -slow* flags)"
    )
    group.add_argument(
        "--slow",
        action="store_true",
        help="run slow episodes: while slow, received datagrams and accepted connections"
        " are read late (one FIFO queue each, exponential delays); timers and output on time",
    )
    defaults = GrayFaultOptions()
    group.add_argument(
        "--slow-mean", type=_non_negative, default=defaults.mean, metavar="SECONDS",
        help="mean of the exponential delay while slow (default %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--slow-on", type=_seconds_range, default=defaults.on, metavar="MIN,MAX",
        help="episode length in seconds, uniform (default 5,60)",
    )  # fmt: skip
    group.add_argument(
        "--slow-off", type=_seconds_range, default=defaults.off, metavar="MIN,MAX",
        help="gap between episodes in seconds, uniform (default 10,30)",
    )  # fmt: skip
    group.add_argument(
        "--slow-seed", type=_seed, default=defaults.seed, metavar="N",
        help="seed of the schedule and the delays (mlnode's -seed; default %(default)s)",
    )  # fmt: skip
    origin = group.add_mutually_exclusive_group()
    origin.add_argument(
        "--slow-at", type=float, default=None, metavar="UNIX_SECONDS",
        help="schedule origin as unix time (default: agent start plus --slow-after)",
    )  # fmt: skip
    origin.add_argument(
        "--slow-after", type=_non_negative, default=0.0, metavar="SECONDS",
        help="schedule origin this long after the agent starts (default 0)",
    )  # fmt: skip
    group.add_argument(
        "--slow-dialed",
        action="store_true",
        help="also read late the first reply bytes on connections we dial (TCP fallback"
        " ping acks, push/pull replies): the whole process reads its input late",
    )


def options_from(args: argparse.Namespace) -> GrayFaultOptions | None:
    """The options the flags ask for; None without `--slow` (nothing injected).

    Raises ValueError naming the flag for a value the parser's types let through.
    """
    if not args.slow:
        return None
    try:
        return GrayFaultOptions(
            mean=args.slow_mean,
            on=args.slow_on,
            off=args.slow_off,
            seed=args.slow_seed,
            at=args.slow_at,
            after=args.slow_after,
            dialed=args.slow_dialed,
        )
    except ValueError as exc:
        raise ValueError(f"--slow: {exc}") from None
