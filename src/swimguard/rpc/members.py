"""Serf's view of the members (status, tags, versions) built from swimguard's.

swimguard's core knows memberlist states (alive, suspect, dead, left) and forgets dead and
left members after a while; Serf shows `alive`, `leaving`, `left`, `failed` and keeps
failed/left members listed for 24 hours. `MemberDirectory` bridges the two from the
agent's events: a leave intent marks a member `leaving` (so its exit reads `left`, not
`failed`), and departed members stay listed, bounded in number and time.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from swimguard.protocol.events import MemberFailed, MemberJoined, MemberLeft, MemberUpdated
from swimguard.protocol.members import Member, MemberState
from swimguard.serf import LeaveIntentReceived, decode_tags
from swimguard.serf.events import JoinIntentReceived

__all__ = ["MemberDirectory", "RpcMember", "SerfStatus"]

RETAIN_SECONDS: Final = 24 * 3600.0
"""Serf's ReconnectTimeout/TombstoneTimeout: how long failed and left members stay listed."""
MAX_RETAINED: Final = 10_000
"""Departed members kept at most; the oldest departure is forgotten first."""
MAX_LEAVING: Final = 65_536
"""Names with a pending leave intent kept at most (gossip may name anything)."""


class SerfStatus(enum.StrEnum):
    """Serf's member status, as `members` and member events spell it."""

    ALIVE = "alive"
    LEAVING = "leaving"
    LEFT = "left"
    FAILED = "failed"
    NONE = "none"


@dataclasses.dataclass(frozen=True, slots=True)
class RpcMember:
    """One member as the RPC shows it."""

    name: str
    host: str
    port: int
    status: SerfStatus
    tags: Mapping[str, str]
    vsn: bytes

    def to_wire(self) -> dict[str, Any]:
        """The RPC `Member` map, keys in Go's order (`Addr` 4 or 16 bytes, `Tags` never nil)."""
        vsn = self.vsn if len(self.vsn) >= 6 else bytes((1, 5, 2, 2, 5, 5))
        try:
            addr = ipaddress.ip_address(self.host).packed
        except ValueError:
            addr = b""
        return {
            "Addr": addr,
            "DelegateCur": vsn[5],
            "DelegateMax": vsn[4],
            "DelegateMin": vsn[3],
            "Name": self.name,
            "Port": self.port,
            "ProtocolCur": vsn[2],
            "ProtocolMax": vsn[1],
            "ProtocolMin": vsn[0],
            "Status": self.status.value,
            "Tags": dict(self.tags),
        }


class MemberDirectory:
    """Serf statuses for the core's members, fed with the agent's events (`observe`)."""

    def __init__(self, *, retain: float = RETAIN_SECONDS, max_retained: int = MAX_RETAINED) -> None:
        self._retain = retain
        self._max_retained = max_retained
        self._leaving: OrderedDict[str, None] = OrderedDict()
        # name -> (member as last seen, departed at), oldest departure first.
        self._departed: OrderedDict[str, tuple[RpcMember, float]] = OrderedDict()

    def observe(self, event: object, *, now: float) -> None:
        """Take note of one agent event (others are ignored)."""
        if isinstance(event, LeaveIntentReceived):
            departed = self._departed.get(event.node)
            if departed is not None:
                # A leave intent about a failed member (serf's force-leave): now `left`.
                member, since = departed
                left = dataclasses.replace(member, status=SerfStatus.LEFT)
                self._departed[event.node] = (left, since)
                return
            self._leaving[event.node] = None
            self._leaving.move_to_end(event.node)
            while len(self._leaving) > MAX_LEAVING:
                self._leaving.popitem(last=False)
        elif isinstance(event, JoinIntentReceived):
            self._leaving.pop(event.node, None)
        elif isinstance(event, MemberJoined):
            self._leaving.pop(event.member.name, None)
            self._departed.pop(event.member.name, None)
        elif isinstance(event, MemberUpdated):
            self._departed.pop(event.member.name, None)
        elif isinstance(event, MemberLeft | MemberFailed):
            member = self.convert(event.member)
            self._leaving.pop(event.member.name, None)
            self._departed.pop(member.name, None)
            self._departed[member.name] = (member, now)
            while len(self._departed) > self._max_retained:
                self._departed.popitem(last=False)

    def forget(self, name: str) -> None:
        """Drop a departed member at once (`force-leave -prune`)."""
        self._departed.pop(name, None)

    def status(self, member: Member) -> SerfStatus:
        leaving = member.name in self._leaving
        if member.state in (MemberState.ALIVE, MemberState.SUSPECT):
            return SerfStatus.LEAVING if leaving else SerfStatus.ALIVE
        if member.state is MemberState.LEFT or leaving:
            return SerfStatus.LEFT
        return SerfStatus.FAILED

    def convert(self, member: Member) -> RpcMember:
        host, port = member.addr
        return RpcMember(
            name=member.name,
            host=host,
            port=port,
            status=self.status(member),
            tags=decode_tags(member.meta),
            vsn=bytes(member.vsn),
        )

    def members(self, current: Iterable[Member], *, now: float) -> list[RpcMember]:
        """The core's members, then departed ones it has forgotten (until Serf would reap them)."""
        while self._departed:
            name, (_, since) = next(iter(self._departed.items()))
            if now - since < self._retain:
                break
            del self._departed[name]
        listed = [self.convert(m) for m in current]
        seen = {m.name for m in listed}
        listed.extend(m for name, (m, _) in self._departed.items() if name not in seen)
        return listed
