"""Synchronous hooks: what the core must pull or decide in the middle of an input.

These mirror memberlist's delegates. Pass ONE object to `Node(hooks=...)`
implementing any subset; the node checks each protocol at construction (methods
are looked up once). Notifications that need no answer (joins, leaves, user
messages, remote state, ping RTTs, conflicts) are *also* emitted as events by
`Node.take_events()`, so most users need no hooks at all.

| swimguard protocol | memberlist delegate |
|---|---|
| `MetaHook.node_meta` | `Delegate.NodeMeta` |
| `MessageHook.notify_message` | `Delegate.NotifyMsg` |
| `BroadcastHook.get_broadcasts` | `Delegate.GetBroadcasts` |
| `StateHook.local_state` / `merge_remote_state` | `Delegate.LocalState` / `MergeRemoteState` |
| `ConflictHook.notify_conflict` | `ConflictDelegate` |
| `MergeHook.notify_merge` | `MergeDelegate` (veto a join push/pull) |
| `AliveHook.notify_alive` | `AliveDelegate` (veto an alive message) |
| `PingHook.ack_payload` / `notify_ping_complete` | `PingDelegate` |

Hooks run inside the core's call: keep them fast and never call back into the
node from them. A hook that raises propagates to the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from swimguard.protocol.members import Member

__all__ = [
    "AliveHook",
    "BroadcastHook",
    "ConflictHook",
    "MergeHook",
    "MessageHook",
    "MetaHook",
    "PingHook",
    "StateHook",
    "forward_hooks",
]


@runtime_checkable
class MetaHook(Protocol):
    """Supplies our metadata at start (at most `limit` bytes)."""

    def node_meta(self, limit: int) -> bytes:
        """Metadata to advertise; longer than `limit` raises `ValueError` in the node."""
        ...


@runtime_checkable
class MessageHook(Protocol):
    """Receives user messages (best-effort, reliable and broadcast)."""

    def notify_message(self, data: bytes) -> None:
        """Called with each user message's bytes."""
        ...


@runtime_checkable
class BroadcastHook(Protocol):
    """Supplies user broadcasts to piggyback on outgoing packets."""

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Messages, each costing `overhead + len(msg)`, totalling at most `limit`."""
        ...


@runtime_checkable
class StateHook(Protocol):
    """Exchanges application state in push/pull."""

    def local_state(self, join: bool) -> bytes:
        """Bytes appended to our push/pull (memberlist's `UserStateLen` bytes)."""
        ...

    def merge_remote_state(self, data: bytes, join: bool) -> None:
        """A peer's push/pull user bytes (only called when non-empty)."""
        ...


@runtime_checkable
class ConflictHook(Protocol):
    """Told when an alive message claims a known name from another address."""

    def notify_conflict(self, existing: Member, other: Member) -> None:
        """`existing` is our record, `other` the conflicting claim (dropped)."""
        ...


@runtime_checkable
class MergeHook(Protocol):
    """May veto merging a peer's state during a join."""

    def notify_merge(self, peers: Sequence[Member]) -> str | None:
        """Return an error text to refuse the merge, None to accept."""
        ...


@runtime_checkable
class AliveHook(Protocol):
    """May veto an alive message."""

    def notify_alive(self, peer: Member) -> str | None:
        """Return an error text to drop the message, None to accept."""
        ...


@runtime_checkable
class PingHook(Protocol):
    """Ack payloads and probe round-trip times (Serf: network coordinates)."""

    def ack_payload(self) -> bytes:
        """Payload put in each UDP ack we send."""
        ...

    def notify_ping_complete(self, member: Member, rtt: float, payload: bytes) -> None:
        """A direct probe of `member` was acked after `rtt` seconds."""
        ...


HOOK_METHODS: tuple[str, ...] = (
    "node_meta",
    "notify_message",
    "get_broadcasts",
    "local_state",
    "merge_remote_state",
    "notify_conflict",
    "notify_merge",
    "notify_alive",
    "ack_payload",
    "notify_ping_complete",
)
"""Every method of the protocols above (a test keeps the list complete)."""


def forward_hooks(wrapper: object, user: object | None) -> None:
    """Give `wrapper` each hook method `user` has and `wrapper`'s class does not define.

    The node finds hooks with `isinstance` against the runtime-checkable protocols, which
    from Python 3.12 look members up statically: a `__getattr__` forwarder is invisible to
    them (on 3.12 the agent's tags silently vanished), an instance attribute is not.
    """
    if user is None:
        return
    for name in HOOK_METHODS:
        if not hasattr(type(wrapper), name) and hasattr(user, name):
            setattr(wrapper, name, getattr(user, name))
