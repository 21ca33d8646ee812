"""A protocol `Node` wired to a `SerfLayer` the way `swimguard.Agent` wires them, without IO.

`Agent._dispatch` feeds the Serf layer from the core's events (Serf-typed user messages,
member joins/leaves/failures) and hands the layer's re-gossip back to the node; the
layer is also the node's push/pull state hook. This harness does the same, so tests
can push hostile input through the core *and* the Serf layer deterministically and then
check what an agent would encode next (push/pull, broadcasts, Serf state).
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from swimguard.config import Config
from swimguard.protocol.events import (
    Event,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    RemoteState,
    UserMessage,
)
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address, Outgoing
from swimguard.serf import SerfBroadcast, SerfDirect, SerfLayer, SerfMessageType

SERF_TYPES = frozenset(int(t) for t in SerfMessageType)
HERE: Address = ("127.0.0.1", 7000)


class SerfNode:
    """`Node` + `SerfLayer`; `pump()` does what the agent's drain does with events."""

    def __init__(self, name: str = "a", *, config: Config | None = None, now: float = 0.0,
                 advertise: Address = HERE, **kwargs: Any) -> None:
        self.serf = SerfLayer(name)
        self.node = Node(config or Config.lan(), name=name, advertise=advertise,
                         rng=random.Random(7), now=now, hooks=self.serf, **kwargs)
        self.out: list[Outgoing] = []
        self.events: list[object] = []
        self.pump(now)

    def pump(self, now: float) -> None:
        """Drain the node; route its events through the Serf layer as `Agent._dispatch` does."""
        while True:
            out = self.node.take_outgoing()
            events = self.node.take_events()
            if not out and not events:
                return
            self.out.extend(out)
            for event in events:
                self._dispatch(event, now)

    def _dispatch(self, event: Event, now: float) -> None:
        serf = self.serf
        if isinstance(event, RemoteState):
            self._serf_out(serf.take_events(), now)
        elif isinstance(event, UserMessage) and event.data and event.data[0] in SERF_TYPES:
            self._serf_out(serf.handle_user_message(event.data), now)
        elif isinstance(event, MemberJoined | MemberUpdated):
            serf.note_member(event.member.name, "alive")
        elif isinstance(event, MemberLeft):
            serf.note_member(event.member.name, "left")
        elif isinstance(event, MemberFailed):
            serf.note_member(event.member.name, "failed")
        self.events.append(event)

    def _serf_out(self, events: list[object], now: float) -> None:
        self.events.extend(events)
        for item in self.serf.take_outgoing():
            if isinstance(item, SerfBroadcast):
                # Too large to gossip again: the agent counts "serf_regossip_too_large".
                with contextlib.suppress(ValueError):
                    self.node.broadcast(item.data, now)
            elif isinstance(item, SerfDirect):
                self.node.send_best_effort(item.to, item.data, now)

    def datagram(self, data: bytes, now: float, sender: Address = ("127.0.0.1", 9)) -> None:
        self.node.receive_datagram(data, sender, now)
        self.pump(now)

    def timeout(self, now: float) -> None:
        self.node.handle_timeout(now)
        self.pump(now)

    def stream(self, data: bytes, now: float, peer: Address = ("127.0.0.1", 9)) -> None:
        """One inbound stream carrying `data`, then EOF."""
        sid = self.node.stream_accepted(peer, now)
        self.node.stream_data(sid, data, now)
        self.node.stream_closed(sid, now)
        self.pump(now)
