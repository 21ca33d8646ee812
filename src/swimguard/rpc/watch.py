"""`swimguard members -watch`: a live table of the cluster, through the agent's RPC.

Each refresh asks the agent for its members (with `members`' filters), the coordinates of
both ends of every row (`get-coordinate`, for a Vivaldi RTT estimate) and, from a swimguard
agent, `explain` of every member: our own health score, and for a peer a running
suspicion. A serf agent has no `explain` (it hangs up on unknown commands), so it is only
asked of an agent whose `stats` says it runs on Python (`speaks_explain`).

On a terminal the table is redrawn in place (`rich.live.Live`); otherwise one table is
printed per refresh, so a pipe or a test reads each refresh in turn. Every string from the
agent is shown as text, never as markup, with control characters replaced: a hostile tag
cannot restyle or move the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from swimguard.rpc.client import Client, MemberInfo, RpcClientError
from swimguard.rpc.explain_cmd import speaks_explain
from swimguard.serf.coordinate import Coordinate, estimate_rtt

if TYPE_CHECKING:
    # rich is imported by `-watch` only: every other `members` run starts without it.
    from rich.table import Table

__all__ = ["MemberView", "WatchRow", "add_watch_flags", "render", "run_watch"]

MAX_EXPLAINED: Final = 64
"""Members `explain`ed per refresh (one request each); the rest show no health."""
MAX_COORDINATES: Final = 256
"""Members whose coordinate is asked per refresh; the rest show no RTT (a refresh of a
large cluster stays a bounded number of requests)."""
_MAX_DIMENSIONS: Final = 64
_PLAIN_WIDTH: Final = 200
"""Console width when stdout is not a terminal, so rows are not wrapped for a reader."""


@dataclasses.dataclass(frozen=True, slots=True)
class WatchRow:
    """One member as the table shows it."""

    member: str
    state: str
    health: str
    rtt: str
    tags: str
    last_change: str


def _clean(text: object) -> str:
    """Printable text only: the agent's strings are untrusted."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def coordinate_from_wire(raw: object) -> Coordinate | None:
    """A `get-coordinate` `Coord` map as a Coordinate; None if it is not a usable one."""
    if not isinstance(raw, Mapping):
        return None
    vec = raw.get("Vec")
    parts = [raw.get("Error"), raw.get("Adjustment"), raw.get("Height")]
    if not isinstance(vec, list) or not 0 < len(vec) <= _MAX_DIMENSIONS:
        return None
    numbers = [*vec, *parts]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
        return None
    if not all(math.isfinite(float(x)) for x in numbers):
        return None
    floats = [float(x) for x in numbers]
    return Coordinate(tuple(floats[:-3]), floats[-3], floats[-2], floats[-1])


async def _coordinate(client: Client, node: str) -> Coordinate | None:
    body = await client.request("get-coordinate", {"Node": node})
    return coordinate_from_wire(body.get("Coord")) if body.get("Ok") is True else None


def _rtt(ours: Coordinate | None, theirs: Coordinate | None) -> str:
    if ours is None or theirs is None:
        return "-"
    try:
        rtt = estimate_rtt(ours, theirs)
    except ValueError:  # dimensions differ: not comparable
        return "-"
    return f"{rtt * 1000:.2f} ms" if math.isfinite(rtt) else "-"


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _health(explanation: Mapping[str, Any] | None) -> str:
    if explanation is None:
        return "-"
    score = explanation.get("health_score")
    if isinstance(score, int):
        return f"{score}/{explanation.get('health_max')}"
    suspicion = explanation.get("suspicion")
    if isinstance(suspicion, Mapping) and suspicion.get("ended") is None:
        confirmations = suspicion.get("confirmations")
        got = len(confirmations) if isinstance(confirmations, list) else 0
        return f"suspected by {suspicion.get('accuser')} ({got}/{suspicion.get('wanted')})"
    return "ok"


class MemberView:
    """What the table shows, refresh after refresh: it remembers when it saw each
    member's status change, for agents that cannot `explain` (a serf agent)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, float]] = {}

    async def refresh(
        self,
        client: Client,
        members: Callable[[], Awaitable[list[MemberInfo]]],
        *,
        now: float,
    ) -> tuple[str, list[WatchRow]]:
        """Our agent's name and one row per member, from a fresh round of requests."""
        stats = await client.stats()
        own = stats.get("agent", {}).get("name", "")
        explains = speaks_explain(stats)
        listed = sorted(await members(), key=lambda m: m.name)
        ours = await _coordinate(client, own)
        rows = []
        for index, m in enumerate(listed):
            explanation = None
            if explains and index < MAX_EXPLAINED:
                try:
                    explanation = await client.explain(m.name)
                except RpcClientError as exc:
                    if "closed" in str(exc):
                        raise
                    # Unknown to the core (a left member is listed a while longer).
            theirs = None
            if m.name != own and index < MAX_COORDINATES:
                theirs = await _coordinate(client, m.name)
            rows.append(WatchRow(
                member=_clean(m.name) + (" (us)" if m.name == own else ""),
                state=_clean(m.status),
                health=_clean(_health(explanation)),
                rtt="-" if m.name == own else _rtt(ours, theirs),
                tags=_clean(",".join(f"{k}={v}" for k, v in sorted(m.tags.items()))),
                last_change=self._last_change(m, explanation, now=now),
            ))
        names = {m.name for m in listed}
        for gone in [n for n in self._seen if n not in names]:
            del self._seen[gone]
        return _clean(own), rows

    def _last_change(
        self, m: MemberInfo, explanation: Mapping[str, Any] | None, *, now: float
    ) -> str:
        seen = self._seen.get(m.name)
        if seen is None or seen[0] != m.status:
            self._seen[m.name] = (m.status, now)
            seen = None if seen is None else (m.status, now)
        if explanation is not None:
            since, then = _finite(explanation.get("since")), _finite(explanation.get("now"))
            if since is not None and then is not None:
                return _ago(max(0.0, then - since))
            return "since start"
        return "-" if seen is None else _ago(now - seen[1])


def render(own: str, rows: Sequence[WatchRow]) -> Table:
    """The table of one refresh."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"members seen by {own}"), title_justify="left")
    for column in ("member", "state", "health", "rtt", "tags", "last change"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = (row.member, row.state, row.health, row.rtt, row.tags, row.last_change)
        table.add_row(*(Text(cell) for cell in cells))
    return table


def add_watch_flags(parser: argparse.ArgumentParser) -> None:
    """`members`' flags for the live view (serf-style `-flag`, `--flag` too)."""
    parser.add_argument("-watch", "--watch", action="store_true",
                        help="a live table refreshed in place (ours, not serf's)")
    parser.add_argument("-interval", "--interval", type=_positive, default=2.0,
                        metavar="SECONDS", help="with -watch: seconds between refreshes")
    parser.add_argument("-count", "--count", type=int, default=0, metavar="N",
                        help="with -watch: stop after N refreshes (0: until Ctrl-C)")


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


async def run_watch(
    client: Client,
    members: Callable[[], Awaitable[list[MemberInfo]]],
    *,
    interval: float,
    count: int,
) -> int:
    """Refresh every `interval` seconds, `count` times (0: until interrupted)."""
    from rich.console import Console
    from rich.live import Live

    loop = asyncio.get_running_loop()
    console = Console()
    view = MemberView()
    refreshes = 0

    async def rounds(show: Callable[[Table], None]) -> None:
        nonlocal refreshes
        while True:
            own, rows = await view.refresh(client, members, now=loop.time())
            show(render(own, rows))
            refreshes += 1
            if count and refreshes >= count:
                return
            await asyncio.sleep(interval)

    if console.is_terminal:
        with Live(console=console, auto_refresh=False) as live:
            await rounds(lambda table: live.update(table, refresh=True))
    else:
        plain = Console(width=_PLAIN_WIDTH, soft_wrap=False)

        def show(table: Table) -> None:
            plain.print(table)
            plain.file.flush()

        await rounds(show)
    return 0
