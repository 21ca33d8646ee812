"""Sans-IO SWIM + Lifeguard core: `Node` plus its outputs, events, members and hooks.

No sockets, clocks, threads, asyncio or global randomness here (enforced by
tests/test_architecture.py): every input takes `now`, randomness comes from the
`random.Random` given to `Node`, and effects are drained by the driver.
"""

from __future__ import annotations

from swimguard.protocol.events import (
    Event,
    JoinCompleted,
    LeaveCompleted,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
    NameConflict,
    PingCompleted,
    RemoteState,
    UserMessage,
)
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import (
    Address,
    Datagram,
    Outgoing,
    StreamClose,
    StreamOpen,
    StreamSend,
)

__all__ = [
    "Address",
    "Datagram",
    "Event",
    "JoinCompleted",
    "LeaveCompleted",
    "Member",
    "MemberFailed",
    "MemberJoined",
    "MemberLeft",
    "MemberState",
    "MemberSuspected",
    "MemberUpdated",
    "NameConflict",
    "Node",
    "Outgoing",
    "PingCompleted",
    "RemoteState",
    "StreamClose",
    "StreamOpen",
    "StreamSend",
    "UserMessage",
]
