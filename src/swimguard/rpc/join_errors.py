"""The error text of a failed `join`, shaped as Serf's agent words it.

Serf's agent returns memberlist's multierror: `1 error occurred:\\n\\t* Failed to join IP:
dial tcp IP:PORT: connect: connection refused\\n\\n` (`N errors occurred` for more, one
`\\t* ` line per address that failed, `Failed to resolve SEED: ...` for a name that did not
resolve). Scripts match on that shape and on Go's dial text for the common cases, so a
refused, unreachable or timed-out connection reads the same here; what has no Go
equivalent (our address-family check, our resolver's words) keeps our text inside the
same shape.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["multierror", "seed_failures"]

_CONNECT: Final = re.compile(r"connect to (?P<addr>\S+) failed: .*?\[Errno (?P<errno>\d+)\]")
_NO_SEED: Final = "no seed answered: "
_UNRESOLVED: Final = "cannot resolve seed "
_DEFAULT_PORT: Final = "7946"
"""memberlist's port, which a seed without one gets."""


def multierror(errors: Sequence[str]) -> str:
    """Go's multierror text for `errors` (at least one)."""
    count = "1 error" if len(errors) == 1 else f"{len(errors)} errors"
    return f"{count} occurred:\n" + "".join(f"\t* {e}\n" for e in errors) + "\n"


def seed_failures(seed: str, error: str) -> list[str]:
    """memberlist's lines for one seed that did not answer, from the agent's error text."""
    if error.startswith(_UNRESOLVED):
        return [f"Failed to resolve {seed}: {error}"]
    parts = error.removeprefix(_NO_SEED).split("; ") if error.startswith(_NO_SEED) else [error]
    return [_failure(seed, part) for part in parts]


def _go_strerror(errno: int) -> str:
    # Go's syscall messages are the C library's, starting in lower case.
    text = os.strerror(errno)
    return text[:1].lower() + text[1:]


def _failure(seed: str, part: str) -> str:
    connect = _CONNECT.search(part)
    if connect is not None:
        addr = connect["addr"]
        ip = addr.rpartition(":")[0].strip("[]")
        why = _go_strerror(int(connect["errno"]))
        return f"Failed to join {ip}: dial tcp {addr}: connect: {why}"
    host, port = _split(seed)
    if "timed out" in part or "timeout" in part:
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"Failed to join {host}: dial tcp {addr}: i/o timeout"
    return f"Failed to join {host}: {part}"


def _split(seed: str) -> tuple[str, str]:
    """`host`, `host:port`, `[v6]:port` or a bare v6 address as (host, port), leniently:
    only for the text, the agent already refused what it could not parse."""
    if seed.startswith("[") and "]" in seed:
        host, _, rest = seed[1:].partition("]")
        return host, rest.removeprefix(":") or _DEFAULT_PORT
    if seed.count(":") == 1:
        host, _, port = seed.partition(":")
        return host, port
    return seed, _DEFAULT_PORT
