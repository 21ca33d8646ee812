"""Exit status of `swimguard agent` and `swimguard keygen`: one status per kind of failure."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """Exit status of `swimguard agent` (README's CLI section, docs/reference/cli.md)."""

    OK = 0
    """Left gracefully after SIGINT/SIGTERM (or `keygen`/`--version` done)."""
    JOIN_FAILED = 1
    """No `--join` seed answered (or a seed resolved to an unreachable address)."""
    USAGE = 2
    """A flag or its value is wrong; nothing was started."""
    CANNOT_START = 3
    """A `--bind`/`--advertise`/`--rpc-addr`/`--metrics-addr` address cannot resolve or bind."""
    OUTPUT_FAILED = 4
    """stdout is closed, full or a broken pipe: events cannot be written."""
    NAME_CONFLICT = 5
    """Another member holds our name and Serf's vote went to it: we stopped, without leaving."""
    SELF_FENCED = 75
    """`--self-fence-after`: our health stayed at its maximum that long; we left gracefully.
    75 is sysexits' EX_TEMPFAIL: a temporary failure, restart and try again."""
