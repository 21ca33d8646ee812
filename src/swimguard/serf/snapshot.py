"""Serf's snapshot file, pure: the lines to append as things happen, and what a file says.

Serf (`-snapshot=PATH`) keeps an append-only text file, one record per line, so a
restarted agent can rejoin the members it knew and does not replay user events and
queries it already saw:

    alive: NAME HOST:PORT     a member joined (Go's TCPAddr text: `[::1]:7946` for IPv6)
    not-alive: NAME           a member left or failed
    clock: N                  member clock - 1 ("last seen"), when it grew
    event-clock: N            the newest user event's Lamport time
    query-clock: N            the newest query's Lamport time (internal ones too)
    leave                     we left gracefully (the alive set is forgotten, unless
                              rejoin-after-leave)

`SnapshotRecorder` holds what the file says (alive members by name, the three clocks)
and turns each happening into the lines to append; it counts the bytes so it can say
when the file should be compacted (rewritten as just its state) as Serf does. It never
touches a file: `swimguard.aio.snapshot_file` does the I/O.

Every line read is hostile input (the file may be truncated, edited or written by
someone else): a line that does not parse, names a member with a name we would refuse
from the network (or one that would break the line format), carries an address that is
not `IP:PORT`, or a clock outside 0..2^64-1, is skipped and counted in `problems`.
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
from collections.abc import Iterable
from typing import Final

from swimguard.protocol.names import name_problem

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_REMEMBERED",
    "MIN_COMPACT_SIZE",
    "SnapshotRecorder",
    "format_tcp_addr",
    "parse_tcp_addr",
]

# Serf's snapshot.go: compaction once the file passes max(128 KiB, 2 x 128 bytes x alive).
MIN_COMPACT_SIZE: Final = 128 * 1024
_BYTES_PER_NODE: Final = 128
_COMPACTION_FACTOR: Final = 2
# A record is at most a 512-byte name plus an address; anything much longer is not ours.
MAX_LINE_BYTES: Final = 4096
# Bound on the alive set a file can make us hold (the Serf layer's name-table bound).
MAX_REMEMBERED: Final = 65536
_U64: Final = (1 << 64) - 1


def format_tcp_addr(host: str, port: int) -> str:
    """Go's `net.TCPAddr.String()`: `1.2.3.4:7946`, `[::1]:7946`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_tcp_addr(text: str) -> tuple[str, int] | None:
    """`(ip, port)` from `IP:PORT` / `[IPv6]:PORT`, or None if it is not one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 0 < port <= 0xFFFF:
        return None
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if (ip.version == 6) != bracketed:
        return None  # Go writes IPv6 in brackets, and only IPv6
    return str(ip), port


def _writable_name(name: str) -> bool:
    # The member-name rule, and no line break: a name is written on one line.
    return name_problem(name) is None and "\n" not in name and "\r" not in name


@dataclasses.dataclass(slots=True)
class SnapshotRecorder:
    """What one snapshot file says, and the lines that keep it up to date.

    Feed it the lines of an existing file with `replay()` first (Serf replays before it
    appends), then call the `on_*` methods as things happen and append the lines they
    return. `rejoin_after_leave` is Serf's `-rejoin`: a `leave` record then keeps the
    alive set, so the next start rejoins even after a graceful leave.
    """

    rejoin_after_leave: bool = False
    min_compact_size: int = MIN_COMPACT_SIZE
    alive: dict[str, str] = dataclasses.field(default_factory=dict)
    """Member name -> `HOST:PORT` (Go's text), as the file says."""
    last_clock: int = 0
    last_event_clock: int = 0
    last_query_clock: int = 0
    offset: int = 0
    """Bytes in the file: replayed plus appended since (reset by compaction)."""
    leaving: bool = False
    torn: bool = False
    """The file read ends in the middle of a line (a crash mid-write): appending to it
    would glue the next record onto that fragment, so it must be rewritten first."""
    problems: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    """Lines skipped while replaying (and names not recorded), by reason."""

    # -- reading -------------------------------------------------------------------------

    def replay(self, lines: Iterable[bytes]) -> None:
        """Take the lines of an existing file, each with its `\\n`, in order.

        Never raises: a bad line is skipped and counted in `problems`; so is a last line
        without its newline (`torn`).
        """
        for raw in lines:
            self.offset += len(raw)
            self.torn = bool(raw) and not raw.endswith(b"\n")
            if self.torn:
                # The last line of a file cut short by a crash: its value may be cut too
                # (`alive: a 10.0.0.1:79` of `...:7946`). Serf skips it as well.
                self.problems["torn_line"] += 1
                continue
            self._replay_line(raw)

    def _replay_line(self, raw: bytes) -> None:
        if len(raw) > MAX_LINE_BYTES:
            self.problems["line_too_long"] += 1
            return
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.problems["not_utf8"] += 1
            return
        line = line.removesuffix("\n")
        if line.startswith("alive: "):
            self._replay_alive(line[len("alive: ") :])
        elif line.startswith("not-alive: "):
            name = line[len("not-alive: ") :]
            if not _writable_name(name):
                self.problems["bad_name"] += 1
                return
            self.alive.pop(name, None)
        elif line.startswith("clock: "):
            self.last_clock = self._clock(line[len("clock: ") :], self.last_clock)
        elif line.startswith("event-clock: "):
            self.last_event_clock = self._clock(line[len("event-clock: ") :], self.last_event_clock)
        elif line.startswith("query-clock: "):
            self.last_query_clock = self._clock(line[len("query-clock: ") :], self.last_query_clock)
        elif line.startswith("coordinate: ") or line.startswith("#"):
            return  # serf <= 0.8.1 wrote coordinates; nobody reads them back
        elif line == "leave":
            if self.rejoin_after_leave:
                return  # Serf: "ignoring previous leave in snapshot"
            self.alive.clear()
            self.last_clock = self.last_event_clock = self.last_query_clock = 0
        elif line.strip():
            self.problems["unknown_record"] += 1

    def _replay_alive(self, info: str) -> None:
        name, sep, addr_text = info.rpartition(" ")  # Serf splits at the last space
        if not sep:
            self.problems["bad_alive"] += 1
            return
        if not _writable_name(name):
            self.problems["bad_name"] += 1
            return
        addr = parse_tcp_addr(addr_text)
        if addr is None:
            self.problems["bad_address"] += 1
            return
        if name not in self.alive and len(self.alive) >= MAX_REMEMBERED:
            self.problems["too_many_members"] += 1
            return
        self.alive[name] = format_tcp_addr(*addr)

    def _clock(self, text: str, current: int) -> int:
        if not text.isascii() or not text.isdigit() or len(text) > 20 or int(text) > _U64:
            self.problems["bad_clock"] += 1
            return current
        return int(text)

    def alive_members(self, *, exclude: str | None = None) -> list[tuple[str, tuple[str, int]]]:
        """The remembered alive members (name, address), without `exclude` (ourselves)."""
        out = []
        for name, text in self.alive.items():
            addr = parse_tcp_addr(text)
            if name != exclude and addr is not None:
                out.append((name, addr))
        return out

    # -- writing -------------------------------------------------------------------------

    def on_alive(self, name: str, host: str, port: int, *, member_clock: int) -> list[str]:
        """A member joined (memberlist's join, us included)."""
        if self.leaving:
            return []  # Serf stops recording once it leaves
        if not _writable_name(name) or not 0 < port <= 0xFFFF:
            self.problems["unwritable_member"] += 1
            return self.on_clock(member_clock)
        if name not in self.alive and len(self.alive) >= MAX_REMEMBERED:
            self.problems["too_many_members"] += 1
            return self.on_clock(member_clock)
        addr = format_tcp_addr(host, port)
        self.alive[name] = addr
        return self._count([f"alive: {name} {addr}\n"]) + self.on_clock(member_clock)

    def on_not_alive(self, name: str, *, member_clock: int) -> list[str]:
        """A member left or failed."""
        if self.leaving:
            return []
        if not _writable_name(name):
            self.problems["unwritable_member"] += 1
            return self.on_clock(member_clock)
        self.alive.pop(name, None)
        return self._count([f"not-alive: {name}\n"]) + self.on_clock(member_clock)

    def on_clock(self, member_clock: int) -> list[str]:
        """`clock:` if the member clock grew (Serf writes its time - 1, "last seen")."""
        last_seen = member_clock - 1
        if last_seen <= self.last_clock:
            return []
        self.last_clock = min(last_seen, _U64)
        return self._count([f"clock: {self.last_clock}\n"])

    def on_user_event(self, ltime: int) -> list[str]:
        """A user event at `ltime` was seen (written only when newer than the last)."""
        if self.leaving or ltime <= self.last_event_clock:
            return []
        self.last_event_clock = min(ltime, _U64)
        return self._count([f"event-clock: {self.last_event_clock}\n"])

    def on_query(self, ltime: int) -> list[str]:
        """A query at `ltime` was seen (internal ones too)."""
        if self.leaving or ltime <= self.last_query_clock:
            return []
        self.last_query_clock = min(ltime, _U64)
        return self._count([f"query-clock: {self.last_query_clock}\n"])

    def on_leave(self) -> list[str]:
        """We leave gracefully: nothing more is recorded but the clock."""
        self.leaving = True
        if not self.rejoin_after_leave:
            self.alive.clear()
        return self._count(["leave\n"])

    # -- compaction ----------------------------------------------------------------------

    @property
    def should_compact(self) -> bool:
        """True once the file is past Serf's threshold: rewrite it with `compacted()`."""
        threshold = max(
            self.min_compact_size, _COMPACTION_FACTOR * _BYTES_PER_NODE * len(self.alive)
        )
        return self.offset > threshold

    def compacted(self) -> list[str]:
        """The whole state as lines (the new file's content); resets the byte count to it."""
        lines = [f"alive: {name} {addr}\n" for name, addr in self.alive.items()]
        lines.append(f"clock: {self.last_clock}\n")
        lines.append(f"event-clock: {self.last_event_clock}\n")
        lines.append(f"query-clock: {self.last_query_clock}\n")
        self.offset = 0
        return self._count(lines)

    def _count(self, lines: list[str]) -> list[str]:
        self.offset += sum(len(line.encode("utf-8")) for line in lines)
        return lines
