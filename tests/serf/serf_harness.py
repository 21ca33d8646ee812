"""The agent's `SerfNode` (a protocol `Node` combined with a `SerfLayer`), without IO.

A thin recorder around `swimguard.serf.node.SerfNode`, so tests can push hostile input
through the core *and* the Serf layer exactly as the agent wires them, deterministically,
and then check what an agent would encode next (push/pull, broadcasts, Serf state).
"""

from __future__ import annotations

import random
from typing import Any

from swimguard.config import Config
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address, Outgoing
from swimguard.serf import SerfLayer
from swimguard.serf.node import SerfNode as RealSerfNode

HERE: Address = ("127.0.0.1", 7000)


class SerfNode:
    """A `SerfNode` whose outputs are recorded: `pump()` is the driver's drain."""

    def __init__(self, name: str = "a", *, config: Config | None = None, now: float = 0.0,
                 advertise: Address = HERE, **kwargs: Any) -> None:
        def factory(config: Config, **node_kwargs: Any) -> Node:
            return Node(config, **node_kwargs, **kwargs)

        self.sn = RealSerfNode(config or Config.lan(), name=name, advertise=advertise,
                               rng=random.Random(7), now=now, node_factory=factory)
        self.serf: SerfLayer = self.sn.serf
        inner = self.sn.node
        assert isinstance(inner, Node)
        self.node: Node = inner
        self.out: list[Outgoing] = []
        self.events: list[object] = []
        self.pump()

    def pump(self) -> None:
        """Drain the node as the agent's driver does (the drain takes no time)."""
        while True:
            out = self.sn.take_outgoing()
            events = self.sn.take_events()
            if not out and not events:
                return
            self.out.extend(out)
            self.events.extend(events)

    def datagram(self, data: bytes, sender: Address = ("127.0.0.1", 9), *, now: float) -> None:
        self.sn.receive_datagram(data, sender, now=now)
        self.pump()

    def timeout(self, *, now: float) -> None:
        self.sn.handle_timeout(now=now)
        self.pump()

    def stream(self, data: bytes, peer: Address = ("127.0.0.1", 9), *, now: float) -> None:
        """One inbound stream carrying `data`, then EOF."""
        sid = self.sn.stream_accepted(peer, now=now)
        self.sn.stream_data(sid, data, now=now)
        self.sn.stream_closed(sid, now=now)
        self.pump()
