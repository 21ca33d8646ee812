"""Serf member status: alive / leaving / left / failed, kept after memberlist forgets.

memberlist forgets a dead or left member after `gossip_to_the_dead_time` (30 s); Serf keeps
it much longer: failed members for `reconnect_timeout` (retrying them every
`reconnect_interval`), left ones for `tombstone_timeout` (both 24 h by default), then
reaps them with a `member-reap` event. `StatusTable` holds those rules and nothing else;
`SerfNode` feeds it what memberlist and the Serf intents decided and runs its deadlines.

The transitions (spec serf-rpc §3.4, §4.1):

- memberlist alive (join/update) -> `ALIVE` (`LEAVING` for a member new to the table whose
  newest intent is a leave);
- a newer leave intent: `ALIVE -> LEAVING`, `FAILED -> LEFT`; with `prune`, the member is
  erased at once (after that transition);
- memberlist dead -> `LEFT` if it was `LEAVING`, else `FAILED`; memberlist left -> `LEFT`
  (serf 0.9.4 says `failed` for a pure memberlist peer that left; we trust memberlist's
  own left state, which only a graceful leave produces).

Suspect is invisible here (still alive), as in Serf.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Iterable, Mapping
from typing import Any, Final

import re2

from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.members import Member
from swimguard.protocol.outgoing import Address
from swimguard.serf.tags import decode_tags

__all__ = [
    "DAY",
    "MemberReaped",
    "MemberStatusChanged",
    "SerfMember",
    "SerfStatus",
    "StatusEvent",
    "StatusTable",
    "StatusTimes",
]

DAY: Final = 24 * 3600.0
_RECONNECT: Final = ("reconnect", "")
_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False


class SerfStatus(enum.Enum):
    """Serf's member status, as `serf members` prints it."""

    ALIVE = "alive"
    LEAVING = "leaving"
    LEFT = "left"
    FAILED = "failed"


_GONE: Final = (SerfStatus.LEFT, SerfStatus.FAILED)


@dataclasses.dataclass(frozen=True, slots=True)
class StatusTimes:
    """How long gone members are kept and how often failed ones are retried (seconds).

    Serf's defaults: 30 s, 24 h, 24 h. 0 for a timeout reaps at the next timer.
    """

    reconnect_interval: float = 30.0
    reconnect_timeout: float = DAY
    tombstone_timeout: float = DAY

    def __post_init__(self) -> None:
        if not self.reconnect_interval > 0:
            raise ValueError("reconnect_interval must be > 0")
        for field in ("reconnect_timeout", "tombstone_timeout"):
            value = getattr(self, field)
            if not 0 <= value < float("inf"):
                raise ValueError(f"{field} must be >= 0 and finite")


@dataclasses.dataclass(frozen=True, slots=True)
class SerfMember:
    """One member as Serf shows it (`serf members`, the RPC `members` command).

    `protocol` and `delegate` are memberlist's (min, max, current) versions; `tags` are
    decoded from the member's metadata (a pure memberlist peer shows `{"role": ""}`).
    """

    name: str
    addr: Address
    tags: Mapping[str, str]
    status: SerfStatus
    protocol: tuple[int, int, int]
    delegate: tuple[int, int, int]
    meta: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class MemberStatusChanged:
    """Event: a Serf status change memberlist has no event for (alive -> leaving, and
    failed -> left, which Serf reports as a member-leave)."""

    member: SerfMember
    previous: SerfStatus


@dataclasses.dataclass(frozen=True, slots=True)
class MemberReaped:
    """Event (Serf's `member-reap`): a failed or left member was forgotten, after its
    timeout or at once (`forced`: force-leave with prune)."""

    member: SerfMember
    forced: bool = False


StatusEvent = MemberStatusChanged | MemberReaped


@dataclasses.dataclass(slots=True)
class _Record:
    member: SerfMember
    gone_at: float | None = None


def _view(m: Member, status: SerfStatus) -> SerfMember:
    vsn = m.vsn.ljust(6, b"\0")  # a peer may have sent fewer versions
    return SerfMember(
        name=m.name,
        addr=m.addr,
        tags=decode_tags(m.meta),
        status=status,
        protocol=(vsn[0], vsn[1], vsn[2]),
        delegate=(vsn[3], vsn[4], vsn[5]),
        meta=m.meta,
    )


class StatusTable:
    """Serf status of every member we know, including failed and left ones not yet reaped.

    At most `max_members` entries: past it, the gone member that went first is reaped
    early (counted in `drops["status_table_full"]`), so churn of hostile names cannot
    grow it for 24 h.
    """

    def __init__(self, times: StatusTimes | None = None, *, max_members: int = 100_000) -> None:
        self.times = times if times is not None else StatusTimes()
        self._max = max_members
        self._records: dict[str, _Record] = {}
        self._deadlines: Deadlines[tuple[str, str]] = Deadlines()
        self.drops: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, name: str) -> SerfMember | None:
        rec = self._records.get(name)
        return None if rec is None else rec.member

    def members(
        self,
        *,
        status: SerfStatus | Iterable[SerfStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> list[SerfMember]:
        """Members filtered like `serf members`: by status, by tag regexps, by name regexp.

        Regexps are RE2 (Go's syntax) anchored at both ends, as Serf anchors them;
        ValueError for one RE2 rejects.
        """
        wanted: frozenset[SerfStatus] | None
        if status is None:
            wanted = None
        elif isinstance(status, SerfStatus):
            wanted = frozenset((status,))
        else:
            wanted = frozenset(status)
        name_re = _compile(name) if name is not None else None
        tag_res = {k: _compile(v) for k, v in (tags or {}).items()}
        out = []
        for rec in self._records.values():
            m = rec.member
            if wanted is not None and m.status not in wanted:
                continue
            if name_re is not None and name_re.fullmatch(m.name) is None:
                continue
            if any(k not in m.tags or r.fullmatch(m.tags[k]) is None for k, r in tag_res.items()):
                continue
            out.append(m)
        return out

    # -- inputs ------------------------------------------------------------------------

    def alive(self, member: Member, *, leaving: bool, now: float) -> None:
        """memberlist says `member` is alive (joined, updated, or refuted a suspicion).

        `leaving`: the newest Serf intent about it is a leave; it counts only for a member
        the table does not hold yet (Serf's recent-intent buffer).
        """
        del now
        rec = self._records.get(member.name)
        status = SerfStatus.LEAVING if leaving and rec is None else SerfStatus.ALIVE
        if rec is not None and rec.member.status is SerfStatus.LEAVING:
            status = SerfStatus.LEAVING  # an update while leaving stays leaving
            if rec.member.addr != member.addr:
                status = SerfStatus.ALIVE  # a restart at a new address
        self._deadlines.cancel(("reap", member.name))
        self._put(member.name, _Record(_view(member, status)))

    def join_intent(self, name: str) -> None:
        """A newer join intent about `name`: a leaving member stays (handleNodeJoinIntent)."""
        rec = self._records.get(name)
        if rec is not None and rec.member.status is SerfStatus.LEAVING:
            rec.member = dataclasses.replace(rec.member, status=SerfStatus.ALIVE)

    def gone(self, member: Member, *, left: bool, now: float) -> SerfMember:
        """memberlist says `member` is dead (`left=False`) or left; returns the new view."""
        rec = self._records.get(member.name)
        was_leaving = rec is not None and rec.member.status in (
            SerfStatus.LEAVING,
            SerfStatus.LEFT,
        )
        status = SerfStatus.LEFT if left or was_leaving else SerfStatus.FAILED
        view = _view(member, status)
        self._put(member.name, _Record(view, gone_at=now))
        self._arm_reap(member.name, now)
        if status is SerfStatus.FAILED and self._deadlines.get(_RECONNECT) is None:
            self._deadlines.set(_RECONNECT, now + self.times.reconnect_interval)
        return view

    def leave_intent(
        self, name: str, *, prune: bool, now: float
    ) -> tuple[MemberStatusChanged | None, SerfMember | None]:
        """A newer leave intent about `name` was accepted (Serf's handleNodeLeaveIntent).

        Returns the status change it made, if any, and the member it erased (`prune`).
        """
        rec = self._records.get(name)
        if rec is None:
            return None, None
        old = rec.member.status
        change = None
        if old is SerfStatus.ALIVE:
            rec.member = dataclasses.replace(rec.member, status=SerfStatus.LEAVING)
            change = MemberStatusChanged(rec.member, old)
        elif old is SerfStatus.FAILED:
            rec.member = dataclasses.replace(rec.member, status=SerfStatus.LEFT)
            change = MemberStatusChanged(rec.member, old)
            gone_at = rec.gone_at if rec.gone_at is not None else now
            rec.gone_at = gone_at
            self._arm_reap(name, gone_at)
        reaped = self._erase(name) if prune else None
        return change, reaped

    def forget(self, name: str) -> SerfMember | None:
        """Erase `name` now (force-leave -prune); returns what was erased."""
        return self._erase(name)

    # -- timers ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._deadlines.next_deadline()

    def expire(self, *, now: float, rng: random.Random) -> tuple[list[SerfMember], Address | None]:
        """Run what is due at `now`: the members reaped, and a failed member to retry.

        The retry follows Serf's reconnect: each interval, with probability
        failed / alive, one failed member chosen at random; so the cluster as a whole
        tries each failed member about once per interval.
        """
        reaped: list[SerfMember] = []
        retry: Address | None = None
        while (key := self._deadlines.pop_due(now=now)) is not None:
            if key == _RECONNECT:
                retry = self._reconnect_target(rng) or retry
                if any(r.member.status is SerfStatus.FAILED for r in self._records.values()):
                    self._deadlines.set(_RECONNECT, now + self.times.reconnect_interval)
                continue
            erased = self._erase(key[1])
            if erased is not None:
                reaped.append(erased)
        return reaped, retry

    # -- internals ---------------------------------------------------------------------

    def _reconnect_target(self, rng: random.Random) -> Address | None:
        failed = [r.member for r in self._records.values() if r.member.status is SerfStatus.FAILED]
        if not failed:
            return None
        gone = sum(1 for r in self._records.values() if r.member.status in _GONE)
        alive = max(1, len(self._records) - gone)
        if rng.random() > len(failed) / alive:
            return None
        return failed[rng.randrange(len(failed))].addr

    def _arm_reap(self, name: str, gone_at: float) -> None:
        rec = self._records[name]
        times = self.times
        keep = (
            times.tombstone_timeout
            if rec.member.status is SerfStatus.LEFT
            else times.reconnect_timeout
        )
        self._deadlines.set(("reap", name), gone_at + keep)

    def _put(self, name: str, rec: _Record) -> None:
        self._records.pop(name, None)
        self._records[name] = rec  # most recently changed last: the eviction order
        if len(self._records) <= self._max:
            return
        victim = next(
            (n for n, r in self._records.items() if r.gone_at is not None and n != name), None
        )
        if victim is None:
            return  # only live members: memberlist's own bound holds them
        self._erase(victim)
        self.drops["status_table_full"] = self.drops.get("status_table_full", 0) + 1

    def _erase(self, name: str) -> SerfMember | None:
        rec = self._records.pop(name, None)
        self._deadlines.cancel(("reap", name))
        return None if rec is None else rec.member


def _compile(expr: str) -> Any:
    try:
        return re2.compile(expr, _RE2_OPTIONS)
    except re2.error as exc:
        raise ValueError(f"bad regexp {expr!r}: {exc}") from None
