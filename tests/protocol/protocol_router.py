"""A tiny in-memory network for protocol tests: Nodes wired together on a fake clock.

Datagrams and streams are delivered after a fixed latency through one ordered
queue; nodes can be crashed (no delivery, no timers) or stalled (their inputs
are held until the stall ends, then the node catches up, like a blocked event
loop). Everything is deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

from swimguard.config import Config
from swimguard.protocol.events import Event
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address, Datagram, StreamClose, StreamOpen, StreamSend

Filter = Callable[[Address, Address, bytes], bool]


@dataclasses.dataclass
class Peer:
    node: Node
    addr: Address
    events: list[Event] = dataclasses.field(default_factory=list)
    stalled_until: float | None = None
    held: list[Callable[[], None]] = dataclasses.field(default_factory=list)


class Cluster:
    """Nodes on a shared fake clock, connected by a perfect (or filtered) network."""

    def __init__(self, config: Config | None = None, *, seed: int = 1, latency: float = 0.001):
        self.config = config or Config.lan()
        self.now = 0.0
        self.latency = latency
        self.rng = random.Random(seed)
        self.peers: dict[str, Peer] = {}
        self.by_addr: dict[Address, str] = {}
        self.down: set[str] = set()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        # (node name, stream id) -> (peer name, peer stream id)
        self._links: dict[tuple[str, int], tuple[str, int]] = {}
        self.drop: Filter | None = None
        self.datagrams = 0
        self.loop_lag_reports = True

    # -- membership of the test network

    def add(self, name: str, *, config: Config | None = None, port: int | None = None,
            **kwargs: Any) -> Node:
        addr = ("127.0.0.1", port or 7000 + len(self.peers))
        node = Node(config or self.config, name=name, advertise=addr,
                    rng=random.Random(self.rng.random()), now=self.now, **kwargs)
        self.peers[name] = Peer(node=node, addr=addr)
        self.by_addr[addr] = name
        self._drain(name)
        return node

    def restart(self, name: str, **kwargs: Any) -> Node:
        """A crashed member comes back: a fresh Node (incarnation 1) at the same address."""
        peer = self.peers[name]
        node = Node(self.config, name=name, advertise=peer.addr,
                    rng=random.Random(self.rng.random()), now=self.now, **kwargs)
        peer.node = node
        self._links = {k: v for k, v in self._links.items() if k[0] != name and v[0] != name}
        self.down.discard(name)
        self._drain(name)
        return node

    def node(self, name: str) -> Node:
        return self.peers[name].node

    def events(self, name: str) -> list[Event]:
        return self.peers[name].events

    def crash(self, name: str) -> None:
        self.down.add(name)

    def stall(self, name: str, duration: float) -> None:
        """Freeze `name` for `duration`: inputs wait, timers fire late."""
        self.peers[name].stalled_until = self.now + duration

    # -- driving

    def call(self, name: str, fn: Callable[[Node], None]) -> None:
        """Run an API call on a node now and perform its effects."""
        fn(self.peers[name].node)
        self._drain(name)

    def join_all(self, names: list[str] | None = None, seed: str | None = None) -> None:
        names = names or list(self.peers)
        seed = seed or names[0]
        for name in names:
            if name != seed:
                self.call(name, lambda n: n.join([self.peers[seed].addr], self.now))

    def run(self, duration: float) -> None:
        self.run_until(lambda: False, duration)

    def run_until(self, pred: Callable[[], bool], timeout: float) -> bool:
        end = self.now + timeout
        while True:
            if pred():
                return True
            t, kind, item = self._next(end)
            if kind is None:
                self.now = end
                return pred()
            self.now = max(self.now, t)
            if kind == "queue":
                heapq.heappop(self._queue)
                assert item is not None
                item()
            else:
                assert isinstance(kind, str)
                self._timer(kind)

    def _next(self, end: float) -> tuple[float, str | None, Callable[[], None] | None]:
        best: tuple[float, str | None, Callable[[], None] | None] = (end, None, None)
        if self._queue and self._queue[0][0] <= best[0]:
            best = (self._queue[0][0], "queue", self._queue[0][2])
        for name, peer in self.peers.items():
            if name in self.down:
                continue
            if peer.stalled_until is not None:
                if peer.stalled_until < best[0]:
                    best = (peer.stalled_until, name, None)
                continue
            d = peer.node.next_deadline()
            if d is not None and d < best[0]:
                best = (d, name, None)
        return best

    def _timer(self, name: str) -> None:
        peer = self.peers[name]
        node = peer.node
        if peer.stalled_until is not None:
            # The stall ends: the timer that should have fired long ago fires now.
            peer.stalled_until = None
            deadline = node.next_deadline()
            if deadline is not None and deadline <= self.now:
                if self.loop_lag_reports:
                    node.report_loop_lag(self.now - deadline, self.now)
                node.handle_timeout(self.now)
                self._drain(name)
            held, peer.held = peer.held, []
            for fn in held:
                fn()
            return
        node.handle_timeout(self.now)
        self._drain(name)

    def _push(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), fn))

    def _deliver(self, name: str, fn: Callable[[Node], None]) -> None:
        if name in self.down:
            return
        peer = self.peers[name]

        def run() -> None:
            fn(peer.node)
            self._drain(name)

        if peer.stalled_until is not None:
            peer.held.append(run)
        else:
            run()

    def _drain(self, name: str) -> None:
        peer = self.peers[name]
        node = peer.node
        peer.events.extend(node.take_events())
        for eff in node.take_outgoing():
            if isinstance(eff, Datagram):
                self._send_datagram(name, eff)
            elif isinstance(eff, StreamOpen):
                self._open(name, eff)
            elif isinstance(eff, StreamSend):
                self._stream_send(name, eff)
            elif isinstance(eff, StreamClose):
                self._stream_close(name, eff)

    def _send_datagram(self, src: str, d: Datagram) -> None:
        self.datagrams += 1
        dst = self.by_addr.get(d.to)
        if dst is None or src in self.down:
            return
        if self.drop is not None and self.drop(self.peers[src].addr, d.to, d.data):
            return
        sender = self.peers[src].addr
        self._push(self.latency, lambda: self._deliver(
            dst, lambda n: n.receive_datagram(d.data, sender, self.now)))

    def _open(self, src: str, op: StreamOpen) -> None:
        dst = self.by_addr.get(op.to)
        key = (src, op.stream_id)
        if dst is None or dst in self.down or (
            self.drop is not None and self.drop(self.peers[src].addr, op.to, b"")
        ):
            self._push(self.latency, lambda: self._deliver(
                src, lambda n: n.stream_closed(op.stream_id, self.now, "connection refused")))
            return
        # Connect synchronously on the acceptor side, after latency.
        self._links[key] = (dst, -1)

        def accept() -> None:
            if dst in self.down:
                return
            peer = self.peers[dst]
            sid = peer.node.stream_accepted(self.peers[src].addr, self.now)
            self._links[key] = (dst, sid)
            self._links[(dst, sid)] = key
            self._drain(dst)

        self._push(self.latency / 2, accept)

    def _stream_send(self, src: str, op: StreamSend) -> None:
        key = (src, op.stream_id)

        def deliver() -> None:
            other = self._links.get(key)
            if other is None or other[1] < 0:
                return
            dst, sid = other
            self._deliver(dst, lambda n: n.stream_data(sid, op.data, self.now))

        self._push(self.latency, deliver)

    def _stream_close(self, src: str, op: StreamClose) -> None:
        key = (src, op.stream_id)

        def deliver() -> None:
            other = self._links.pop(key, None)
            if other is None or other[1] < 0:
                return
            dst, sid = other
            if self._links.pop(other, None) is None:
                return
            self._deliver(dst, lambda n: n.stream_closed(sid, self.now))

        self._push(self.latency, deliver)


def names_of(node: Node, *states: str) -> set[str]:
    """Names of members of `node` in the given states (by MemberState name)."""
    return {m.name for m in node.members() if m.state.name in states}
