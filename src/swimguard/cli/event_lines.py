"""The JSON line `swimguard agent` prints on stdout for each event (Serf's event names)."""

from __future__ import annotations

import base64
import json

from swimguard.aio.sockets import format_address
from swimguard.protocol.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
)
from swimguard.protocol.members import MemberState
from swimguard.serf import decode_tags
from swimguard.serf.events import QueryReceived, UserEventReceived
from swimguard.serf.status import MemberReaped, MemberStatusChanged, SerfStatus

__all__ = ["EVENT_NAMES", "event_line"]

EVENT_NAMES: dict[type, str] = {
    MemberJoined: "member-join",
    MemberLeft: "member-leave",
    MemberFailed: "member-failed",
    MemberUpdated: "member-update",
    MemberSuspected: "member-suspect",
}
"""JSON `event` value for each membership event type (Serf's names, plus suspect)."""

_SERF_STATUS = {
    MemberState.ALIVE: "alive",
    MemberState.SUSPECT: "alive",  # suspicion is invisible to Serf
    MemberState.DEAD: "failed",
    MemberState.LEFT: "left",
}


def event_line(event: object, ts: float) -> str | None:
    """The JSON line for a membership, user or (application) query event; None for others.

    Member lines keep their first five keys and add Serf's `tags` and `status`.
    """
    if isinstance(event, MemberReaped | MemberStatusChanged):
        return _serf_status_line(event, ts)
    if isinstance(event, UserEventReceived):
        return json.dumps({
            "ts": ts, "event": "user", "name": event.name, "payload": _b64(event.payload),
            "ltime": event.ltime, "coalesce": event.coalesce,
        })
    if isinstance(event, QueryReceived):
        query = event.query
        if query.name.startswith("_serf_"):
            return None  # Serf's own (ping, keys, conflict): never shown to users
        return json.dumps({
            "ts": ts, "event": "query", "name": query.name, "payload": _b64(query.payload),
            "ltime": query.ltime,
        })
    kind = EVENT_NAMES.get(type(event))
    if kind is None:
        return None
    member = event.member  # type: ignore[attr-defined]
    return json.dumps(
        {
            "ts": ts,
            "event": kind,
            "name": member.name,
            "addr": format_address(member.addr),
            "incarnation": member.incarnation,
            "tags": decode_tags(member.meta),
            "status": _SERF_STATUS[member.state],
        }
    )


def _serf_status_line(event: MemberReaped | MemberStatusChanged, ts: float) -> str | None:
    if isinstance(event, MemberStatusChanged):
        if event.member.status is not SerfStatus.LEFT:
            return None  # alive -> leaving: serf has no event for it either
        kind = "member-leave"
    else:
        kind = "member-reap"
    member = event.member
    return json.dumps(
        {
            "ts": ts,
            "event": kind,
            "name": member.name,
            "addr": format_address(member.addr),
            "incarnation": None,
            "tags": dict(member.tags),
            "status": member.status.value,
        }
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
