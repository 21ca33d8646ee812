"""`SerfNode`: a protocol `Node` and the Serf layer combined into one pure node.

It is driven exactly like a `Node` (the `NodeAPI` contract of docs/architecture.md):
inputs take `now`, outputs are drained with `take_outgoing()` / `take_events()`, and
`next_deadline()` names the one moment it next needs `handle_timeout(now)`. A driver
(the asyncio `Agent`, the simulator) needs to know nothing about Serf.

What it adds to the node, all inside one input so that nothing goes back and forth
through the driver:

- Serf messages (memberlist user messages whose first byte is a Serf type) go to the
  Serf layer instead of coming out as `UserMessage`; the layer's events come out of
  `take_events()` in their place, and its re-gossip, query acks and relays go straight
  into the node's queues before the driver drains it.
- Push/pull user state: the layer is the node's state hook (unless the application's
  hooks bring both halves of their own); user events replayed by a merge come out
  where the node's `RemoteState` event was, which is not passed on (the state already
  reached the layer through the hook).
- Intents: our join intent is gossiped when a join reached someone; `leave()` gossips
  our leave intent first and starts the memberlist leave at a deadline a few gossip
  rounds later, so Serf peers show us as left, not failed.
- The layer learns what memberlist decided about each member (for push/pull's left list).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI
from swimguard.protocol.events import (
    Event,
    JoinCompleted,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    RemoteState,
    UserMessage,
)
from swimguard.protocol.hooks import forward_hooks
from swimguard.protocol.members import Member
from swimguard.protocol.outgoing import Address, Outgoing
from swimguard.serf.events import SerfBroadcast, SerfDirect, SerfEvent
from swimguard.serf.layer import SerfLayer
from swimguard.wire.encryption import Keyring

__all__ = ["SerfNode", "SerfNodeEvent", "leave_intent_wait"]

SerfNodeEvent = Event | SerfEvent
"""What `SerfNode.take_events()` returns: the node's events and the Serf layer's."""


def leave_intent_wait(config: Config, timeout: float) -> float:
    """How long our leave intent gossips before the memberlist leave starts.

    A few gossip rounds (at least 0.1 s), but never more than half the leave's `timeout`.
    """
    return min(timeout / 2, max(3 * config.gossip_interval, 0.1))


class _SerfHooks:
    """The hooks handed to the node: Serf's push/pull state, the application's for the rest.

    Every other hook is the application's own method (`forward_hooks`), so the node's
    per-protocol checks see exactly what the application implements. An application that
    brings both `local_state` and `merge_remote_state` keeps push/pull state to itself.
    """

    def __init__(self, serf: SerfLayer, user: object | None) -> None:
        own = hasattr(user, "local_state") and hasattr(user, "merge_remote_state")
        self._state: Any = user if own else serf
        forward_hooks(self, user)

    def local_state(self, join: bool) -> bytes:
        state: bytes = self._state.local_state(join)
        return state

    def merge_remote_state(self, data: bytes, join: bool) -> None:
        self._state.merge_remote_state(data, join)

def _default_factory(config: Config, **kwargs: Any) -> NodeAPI:
    from swimguard.protocol.node import Node  # late: protocol.node imports much

    node: NodeAPI = Node(config, **kwargs)
    return node


class SerfNode:
    """A member speaking memberlist and enough of Serf for Serf agents to see it properly.

    Built like a `Node` (`config`, `name=`, `advertise=`, `rng=`, `now=`, `hooks=`,
    `keyring=`, `label=`), plus Serf `tags` (used for query filters; our metadata is the
    caller's business) and `node_factory`, which builds the inner node with those same
    keywords (default `swimguard.protocol.Node`). The keyring is shared with the Serf
    layer, so `serf keys` queries change what the node encrypts with.
    """

    def __init__(
        self,
        config: Config,
        *,
        name: str,
        advertise: Address,
        rng: random.Random,
        now: float,
        hooks: object | None = None,
        keyring: Keyring | None = None,
        label: bytes = b"",
        tags: Mapping[str, str] | None = None,
        node_factory: Callable[..., NodeAPI] | None = None,
    ) -> None:
        self.config = config
        self.serf = SerfLayer(name, tags=tags, keyring=keyring)
        factory = node_factory or _default_factory
        self.node: NodeAPI = factory(
            config,
            name=name,
            advertise=advertise,
            rng=rng,
            now=now,
            hooks=_SerfHooks(self.serf, hooks),
            keyring=keyring,
            label=label,
        )
        self._events: list[SerfNodeEvent] = []
        self._regossip_too_large = 0
        # The memberlist leave waits for our leave intent to go round: (start at, ends by).
        self._leave_at: tuple[float, float] | None = None
        self._pump(now=now)

    # -- Serf inputs -------------------------------------------------------------------

    def user_event(
        self, name: str, payload: bytes, *, now: float, coalesce: bool = True
    ) -> None:
        """Gossip a Serf user event (ValueError above Serf's 512 bytes of name + payload)."""
        self.node.broadcast(self.serf.user_event(name, payload, coalesce=coalesce), now=now)
        self._pump(now=now)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Tags for query filters (the caller gossips the matching metadata)."""
        self.serf.set_tags(tags)

    # -- NodeAPI inputs ------------------------------------------------------------------

    def join(self, seeds: Sequence[Address], *, now: float) -> None:
        self.node.join(seeds, now=now)
        self._pump(now=now)

    def leave(self, timeout: float, *, now: float) -> None:
        """Gossip our leave intent now; the memberlist leave starts at a deadline after it."""
        self.node.broadcast(self.serf.leave_intent(), now=now)
        self._leave_at = (now + leave_intent_wait(self.config, timeout), now + timeout)
        self._pump(now=now)

    def update_meta(self, meta: bytes, *, now: float) -> None:
        self.node.update_meta(meta, now=now)
        self._pump(now=now)

    def send_best_effort(self, to: Address, data: bytes, *, now: float) -> None:
        self.node.send_best_effort(to, data, now=now)
        self._pump(now=now)

    def send_reliable(self, to: Address, data: bytes, *, now: float) -> int:
        call = self.node.send_reliable(to, data, now=now)
        self._pump(now=now)
        return call

    def broadcast(self, data: bytes, key: str | None = None, *, now: float) -> None:
        self.node.broadcast(data, now=now, key=key)
        self._pump(now=now)

    def receive_datagram(self, data: bytes, sender: Address, *, now: float) -> None:
        self.node.receive_datagram(data, sender, now=now)
        self._pump(now=now)

    def stream_accepted(self, peer: Address, *, now: float) -> int:
        stream_id = self.node.stream_accepted(peer, now=now)
        self._pump(now=now)
        return stream_id

    def stream_data(
        self, stream_id: int, data: bytes, *, now: float, max_work: int | None = None
    ) -> bool:
        pending = self.node.stream_data(stream_id, data, now=now, max_work=max_work)
        self._pump(now=now)
        return pending

    def stream_closed(self, stream_id: int, error: str | None = None, *, now: float) -> None:
        self.node.stream_closed(stream_id, now=now, error=error)
        self._pump(now=now)

    def report_loop_lag(self, lag: float, *, now: float) -> None:
        self.node.report_loop_lag(lag, now=now)
        self._pump(now=now)

    def handle_timeout(self, *, now: float) -> None:
        leave_at = self._leave_at
        if leave_at is not None and now >= leave_at[0]:
            self._leave_at = None
            self.node.leave(now=now, timeout=max(0.0, leave_at[1] - now))
        self.node.handle_timeout(now=now)
        self._pump(now=now)

    # -- NodeAPI outputs -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadline = self.node.next_deadline()
        if self._leave_at is not None and (deadline is None or self._leave_at[0] < deadline):
            return self._leave_at[0]
        return deadline

    def take_outgoing(self) -> list[Outgoing]:
        return self.node.take_outgoing()

    def take_events(self) -> list[SerfNodeEvent]:
        events, self._events = self._events, []
        return events

    def members(self) -> list[Member]:
        return self.node.members()

    @property
    def local_member(self) -> Member:
        return self.node.local_member

    @property
    def health_score(self) -> int:
        return self.node.health_score

    @property
    def drops(self) -> Mapping[str, int]:
        """The node's counters, then the Serf layer's prefixed with `serf_`."""
        counts = dict(self.node.drops)
        for reason, n in self.serf.drops.items():
            counts[f"serf_{reason}"] = n
        if self._regossip_too_large:
            counts["serf_regossip_too_large"] = self._regossip_too_large
        return counts

    # -- the Serf half of every input ------------------------------------------------------

    def _pump(self, *, now: float) -> None:
        """Route the node's new events through the Serf layer, in order, until quiet.

        What the layer sends (re-gossip, acks) enters the node's queues here, so the
        driver's next `take_outgoing()` already holds it.
        """
        while True:
            events = self.node.take_events()
            if not events:
                return
            for event in events:
                self._route(event, now=now)

    def _route(self, event: Event, *, now: float) -> None:
        serf = self.serf
        if isinstance(event, RemoteState):
            # The state hook merged it already; only the events it replayed go on.
            self._serf_out(serf.take_events(), now=now)
            return
        if isinstance(event, UserMessage):
            claimed = serf.claim_user_message(event.data)
            if claimed is not None:  # framed as Serf frames it; anything else is the user's
                self._serf_out(claimed, now=now)
                return
        if isinstance(event, MemberJoined | MemberUpdated):
            serf.note_member(event.member.name, "alive")
        elif isinstance(event, MemberLeft):
            serf.note_member(event.member.name, "left")
        elif isinstance(event, MemberFailed):
            serf.note_member(event.member.name, "failed")
        elif isinstance(event, JoinCompleted) and event.joined > 0:
            # Serf gossips its join intent once memberlist's join reached someone.
            self.node.broadcast(serf.join_intent(), now=now)
        self._events.append(event)

    def _serf_out(self, events: Sequence[SerfEvent], *, now: float) -> None:
        self._events.extend(events)
        for out in self.serf.take_outgoing():
            if isinstance(out, SerfBroadcast):
                try:
                    self.node.broadcast(out.data, now=now)
                except ValueError:
                    # A peer with a larger UDP buffer sent it; memberlist's queue would
                    # never send it either. Not ours to gossip: count, do not raise.
                    self._regossip_too_large += 1
            elif isinstance(out, SerfDirect):
                self.node.send_best_effort(out.to, out.data, now=now)
