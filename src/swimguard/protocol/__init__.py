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
    NameHeldElsewhere,
    PingCompleted,
    RemoteState,
    SelfFenced,
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
