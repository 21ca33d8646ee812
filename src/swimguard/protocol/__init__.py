"""Sans-IO SWIM + Lifeguard core: `Node` plus its outputs, events, members and hooks.

No sockets, clocks, threads, asyncio or global randomness here (enforced by
tests/test_architecture.py): every input takes `now`, randomness comes from the
`random.Random` given to `Node`, and effects are drained by the driver.

Behaviour follows memberlist 0.2.2. Known differences (all wire-compatible):

* Messages are handled synchronously in arrival order; memberlist hands
  alive/suspect/dead/user messages to a bounded queue (HandoffQueueDepth,
  alive first, LIFO). There is no queue to overflow here.
* Probe rounds: the next probe starts at `max(start + probe_interval, end of
  the current probe)`; memberlist uses a ticker with the same effect. Tickers
  start at a random phase; push/pull first runs within one interval of start.
* Stale alive messages (known member, same address, not newer) are dropped
  before the alive hook is consulted; memberlist calls the AliveDelegate first.
* A refutation's alive broadcast is queued under our node name (memberlist
  queues it under our address string, so it does not replace older news of us).
* Left members are reaped like dead ones after GossipToTheDeadTime
  (`Config.reap_left_nodes`, memberlist >= 0.3 behaviour; 0.2.2 keeps them).
* A Vsn of 1-5 bytes is dropped (0.2.2 panics); bad addresses are dropped.
* Values are kept only if they can be sent again (`protocol.names`, docs/architecture.md
  "Validation"): names must be UTF-8, non-empty and at most 512 bytes (memberlist keeps
  any bytes), meta at most 512 bytes; anything else is dropped and counted.
* Past incarnation 0xFFFFFFFF our own incarnation restarts at 1 (memberlist wraps to 0,
  which its peers never accept again; see `Membership._refute`).
* `update_meta()` reports nothing back (memberlist's UpdateNode waits for the
  broadcast). `send_reliable()` returns a call id and reports the stream's end as
  `ReliableCompleted` (memberlist's SendReliable returns the dial and write error;
  this also reports a timeout or an error reply).
* Not implemented: DisableTcpPingsForNode, `Memberlist.Ping` (an on-demand
  ping API), go-metrics (dropped inputs are counted in `Node.drops` instead).
* Idle gossip rounds are skipped: with nothing queued the gossip timer sleeps
  and is re-armed on the same cadence when something is queued (memberlist
  wakes every GossipInterval and finds nothing to send).

Extensions: switches for each Lifeguard part (`Config.lha_probe`,
`lha_suspicion`, `buddy_system`), the loop-lag health input
(`Node.report_loop_lag`, rule in `protocol.awareness`), health-scaled
suspicion timeouts (`Config.health_scaled_suspicion`), slow refresh
(`Config.slow_refresh_interval`: a slow member that still hears its peers
re-announces itself with a new incarnation, refuting ahead), a bounded user
broadcast queue (`Config.max_user_broadcasts`) and bounded inbound streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it: imported on first use (PEP 562), so
# that importing one submodule does not load the whole package.
_EXPORTS: dict[str, str] = {
    "Event": "swimguard.protocol.events",
    "JoinCompleted": "swimguard.protocol.events",
    "LeaveCompleted": "swimguard.protocol.events",
    "MemberFailed": "swimguard.protocol.events",
    "MemberJoined": "swimguard.protocol.events",
    "MemberLeft": "swimguard.protocol.events",
    "MemberSuspected": "swimguard.protocol.events",
    "MemberUpdated": "swimguard.protocol.events",
    "NameConflict": "swimguard.protocol.events",
    "NameHeldElsewhere": "swimguard.protocol.events",
    "PingCompleted": "swimguard.protocol.events",
    "RemoteState": "swimguard.protocol.events",
    "SelfFenced": "swimguard.protocol.events",
    "UserMessage": "swimguard.protocol.events",
    "Member": "swimguard.protocol.members",
    "MemberState": "swimguard.protocol.members",
    "Node": "swimguard.protocol.node",
    "Address": "swimguard.protocol.outgoing",
    "Datagram": "swimguard.protocol.outgoing",
    "Outgoing": "swimguard.protocol.outgoing",
    "StreamClose": "swimguard.protocol.outgoing",
    "StreamOpen": "swimguard.protocol.outgoing",
    "StreamSend": "swimguard.protocol.outgoing",
}

if TYPE_CHECKING:
    from swimguard.protocol.events import Event as Event
    from swimguard.protocol.events import JoinCompleted as JoinCompleted
    from swimguard.protocol.events import LeaveCompleted as LeaveCompleted
    from swimguard.protocol.events import MemberFailed as MemberFailed
    from swimguard.protocol.events import MemberJoined as MemberJoined
    from swimguard.protocol.events import MemberLeft as MemberLeft
    from swimguard.protocol.events import MemberSuspected as MemberSuspected
    from swimguard.protocol.events import MemberUpdated as MemberUpdated
    from swimguard.protocol.events import NameConflict as NameConflict
    from swimguard.protocol.events import NameHeldElsewhere as NameHeldElsewhere
    from swimguard.protocol.events import PingCompleted as PingCompleted
    from swimguard.protocol.events import RemoteState as RemoteState
    from swimguard.protocol.events import SelfFenced as SelfFenced
    from swimguard.protocol.events import UserMessage as UserMessage
    from swimguard.protocol.members import Member as Member
    from swimguard.protocol.members import MemberState as MemberState
    from swimguard.protocol.node import Node as Node
    from swimguard.protocol.outgoing import Address as Address
    from swimguard.protocol.outgoing import Datagram as Datagram
    from swimguard.protocol.outgoing import Outgoing as Outgoing
    from swimguard.protocol.outgoing import StreamClose as StreamClose
    from swimguard.protocol.outgoing import StreamOpen as StreamOpen
    from swimguard.protocol.outgoing import StreamSend as StreamSend

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
    "NameHeldElsewhere",
    "Node",
    "Outgoing",
    "PingCompleted",
    "RemoteState",
    "SelfFenced",
    "StreamClose",
    "StreamOpen",
    "StreamSend",
    "UserMessage",
]


def __getattr__(name: str) -> Any:
    import importlib  # on first use: `swimguard members` never needs it

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain global lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
