"""Notifications the core emits; drained by the driver with `Node.take_events()`."""

from __future__ import annotations

import dataclasses

from swimguard.protocol.hooks import MessageHook
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.outgoing import Address


@dataclasses.dataclass(frozen=True, slots=True)
class MemberJoined:
    """A member became alive (new, or back from dead/left). Also emitted for ourselves at start."""

    member: Member


@dataclasses.dataclass(frozen=True, slots=True)
class MemberUpdated:
    """An alive member changed its metadata (or address, after a reclaim)."""

    member: Member


@dataclasses.dataclass(frozen=True, slots=True)
class MemberSuspected:
    """We started suspecting a member (not a memberlist delegate call; for flap metrics)."""

    member: Member


@dataclasses.dataclass(frozen=True, slots=True)
class MemberFailed:
    """A member was declared dead by failure detection (dead message from someone else)."""

    member: Member


@dataclasses.dataclass(frozen=True, slots=True)
class MemberLeft:
    """A member left gracefully (dead message from itself)."""

    member: Member


@dataclasses.dataclass(frozen=True, slots=True)
class UserMessage:
    """User bytes from a peer: a best-effort or reliable message, or a user broadcast.

    `sender`: the address it came from, when known: the peer that sent the packet or
    opened the stream (for a gossiped broadcast, the member that passed it on, which need
    not be its author). Not part of equality: two events are the same message if they
    carry the same bytes, whichever path brought them.
    """

    data: bytes
    sender: tuple[str, int] | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteState:
    """User state a peer sent in push/pull (memberlist's MergeRemoteState)."""

    data: bytes
    join: bool


@dataclasses.dataclass(frozen=True, slots=True)
class PingCompleted:
    """A direct probe of `member` was acked after `rtt` seconds with the ack `payload`."""

    member: Member
    rtt: float
    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class NameConflict:
    """An alive message claims a known name from another address; it was dropped."""

    existing: Member
    other: Member


@dataclasses.dataclass(frozen=True, slots=True)
class JoinCompleted:
    """Every seed of one `Node.join()` call answered or failed; `joined` counts successes."""

    joined: int
    errors: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class LeaveCompleted:
    """The leave broadcast went out (or `timed_out`); the driver may stop now."""

    timed_out: bool


@dataclasses.dataclass(frozen=True, slots=True)
class NameHeldElsewhere:
    """A peer's push/pull state holds our name at another address `addr`, in `state`.

    memberlist refuses our alive messages at the new address as a name conflict until it
    forgets that record (a dead one: `gossip_to_the_dead_time` after its death) or its
    `dead_node_reclaim_time` passes: the usual sign of a restart at a new address that
    came back too soon. Reported for suspect and dead records (an alive one is a live
    duplicate: `NameConflict`), not for dead ones when our own reclaim time is set.
    """

    addr: tuple[str, int]
    state: MemberState
    incarnation: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReliableCompleted:
    """The stream of `send_reliable` call `call` (the id it returned) ended.

    `error` is None when the receiver read the message and closed the stream (memberlist's
    receiver closes once it has read it); else why it failed: the connection could not be
    made, broke, or did not finish within `Config.tcp_timeout`.
    """

    call: int
    to: Address
    error: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class SelfFenced:
    """Our health score stayed at its maximum `after` seconds (since `since`): this member
    is too slow to judge others or answer in time (`Config.self_fence_after`). The node
    keeps running; its driver leaves the cluster gracefully (a Serf node gossips its leave
    intent first) and may stop the process so that a supervisor restarts it."""

    score: int
    since: float
    after: float


Event = (
    MemberJoined
    | MemberUpdated
    | MemberSuspected
    | MemberFailed
    | MemberLeft
    | UserMessage
    | RemoteState
    | PingCompleted
    | NameConflict
    | JoinCompleted
    | LeaveCompleted
    | NameHeldElsewhere
    | ReliableCompleted
    | SelfFenced
)


def deliver_user_message(
    events: list[Event],
    hook: MessageHook | None,
    data: bytes,
    sender: tuple[str, int] | None = None,
) -> None:
    """A user message arrived (by UDP or over a stream): an event, then the hook."""
    events.append(UserMessage(data, sender))
    if hook is not None:
        hook.notify_message(data)
