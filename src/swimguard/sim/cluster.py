"""SimCluster: many real protocol nodes, one virtual clock, one seeded event queue.

Theory of operation. Every node input goes through the event queue: a datagram arrives at
`send time + link delay`, a timer fires at the node's `next_deadline()` (plus a drawn delay
when the member is slow), and each input is followed by the driver contract of
architecture.md: perform every `take_outgoing()` effect in order, publish every
`take_events()` event to the listeners, re-arm the single timer. Before each
`handle_timeout` the cluster reports the timer's lateness through `report_loop_lag`, exactly
as the asyncio driver does. No protocol rule lives here.

Determinism: all randomness comes from `random.Random` instances seeded from the cluster
seed (one per node incarnation, one for the network, one for slow delays); ties in the
queue are broken by insertion order; members are kept in a list by index. The same seed and
the same calls therefore give the same trace, and `trace_digest()` proves it.

Members are never removed: a crashed member keeps its index and address, so a restart
under the same name is a new node (new epoch) at the same address, and stale deliveries
(timers, delayed inputs, stream segments of the old process) are recognised by epoch.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from swimguard.protocol.events import Event, LeaveCompleted
from swimguard.protocol.members import Member
from swimguard.protocol.outgoing import Address, Datagram, StreamClose, StreamOpen, StreamSend
from swimguard.sim.clock import EventQueue, VirtualClock
from swimguard.sim.network import LinkModel, SimNetwork
from swimguard.sim.nodeapi import NodeFactory, SimNode
from swimguard.sim.slow import SlowSpec

__all__ = ["Listener", "SimCluster", "SimMember", "address_for"]

UP, CRASHED, LEFT, LEAVING = "up", "crashed", "left", "leaving"


def address_for(index: int, port: int = 7946) -> Address:
    """The advertise address of member `index`: a distinct IPv4 text address."""
    return (f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}", port)


class Listener(Protocol):
    """Receives what the nodes publish. `cause` is "timer" or "input" (what ran the node)."""

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        """Called once per drain that produced events."""


class SimMember:
    """One simulated process slot: a name, an address, and the node currently running there."""

    __slots__ = (
        "_state",
        "addr",
        "bytes_sent",
        "down_at",
        "epoch",
        "ever_slow",
        "fifo_time",
        "index",
        "msgs_sent",
        "name",
        "node",
        "restarts",
        "slow",
        "stream_fifo_time",
        "timer_deadline",
        "timer_gen",
        "up",
    )

    def __init__(self, index: int, name: str, addr: Address, node: SimNode) -> None:
        self.index = index
        self.name = name
        self.addr = addr
        self.node = node
        self.up = True
        self.state = UP
        self.epoch = 0
        self.restarts = 0
        self.slow: SlowSpec | None = None
        self.ever_slow = False
        self.fifo_time = 0.0
        self.stream_fifo_time = 0.0
        self.timer_deadline: float | None = None
        self.timer_gen = 0
        self.msgs_sent = 0
        self.bytes_sent = 0
        self.down_at: float | None = None

    @property
    def state(self) -> str:
        """ "up", "leaving", "crashed" or "left"."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        # A plain attribute: the hot path reads it for every delivery.
        self.up = value in (UP, LEAVING)

    def __repr__(self) -> str:
        return f"SimMember({self.name!r}, {self.state}, epoch={self.epoch})"


class _Stream:
    """One modelled TCP connection between an opener (a) and an acceptor (b)."""

    __slots__ = ("a", "a_epoch", "a_id", "a_open", "b", "b_epoch", "b_id", "b_open", "last")

    def __init__(self, a: SimMember, a_id: int, b: SimMember) -> None:
        self.a = a
        self.a_epoch = a.epoch
        self.a_id = a_id
        self.b = b
        self.b_epoch = b.epoch
        self.b_id: int | None = None
        self.a_open = True
        self.b_open = True
        # Delivery time of the last segment in each direction (0: a->b, 1: b->a): TCP order.
        self.last = [0.0, 0.0]


class SimCluster:
    """Nodes + network + clock. Build, schedule faults, `run_until`, inspect."""

    def __init__(
        self,
        node_factory: NodeFactory,
        *,
        seed: int,
        link: LinkModel | None = None,
        trace: bool = False,
        replay_hint: str = "",
    ) -> None:
        self.seed = seed
        self.node_factory = node_factory
        self.clock = VirtualClock()
        self.queue = EventQueue()
        self.network = SimNetwork(random.Random(f"{seed}/network"), link)
        self.slow_rng = random.Random(f"{seed}/slow")
        self.members: list[SimMember] = []
        self.by_name: dict[str, SimMember] = {}
        self.by_addr: dict[Address, SimMember] = {}
        self.listeners: list[Listener] = []
        self.replay_hint = replay_hint
        self._streams: dict[tuple[int, int, int], _Stream] = {}  # (member, epoch, id)
        self._trace = hashlib.blake2b(digest_size=16) if trace else None
        self.steps = 0
        self._seq = self.queue.counter
        self.datagram_tap: Callable[[float, SimMember, Datagram, str], None] | None = None
        """Optional observer of every datagram sent: (now, sender, datagram, cause)."""

    # -- building ---------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Current virtual time (seconds)."""
        return self.clock.now

    def _new_node(self, name: str, addr: Address, restart: int) -> SimNode:
        rng = random.Random(f"{self.seed}/node/{name}/{restart}")
        return self.node_factory(name, addr, rng, self.clock.now)

    def start_member(self, name: str, seeds: Sequence[str] = ()) -> None:
        """`add_member` for use with `at()` (returns nothing)."""
        self.add_member(name, seeds)

    def add_member(self, name: str, seeds: Sequence[str] = ()) -> SimMember:
        """Start a node now; if `seeds` are given it joins them right away."""
        if name in self.by_name:
            raise ValueError(f"member {name!r} already exists")
        index = len(self.members)
        addr = address_for(index)
        member = SimMember(index, name, addr, self._new_node(name, addr, 0))
        self.members.append(member)
        self.by_name[name] = member
        self.by_addr[addr] = member
        if seeds:
            member.node.join([self.by_name[s].addr for s in seeds], self.clock.now)
        self._drain(member, "input")
        return member

    def add_listener(self, listener: Listener) -> None:
        """Register an observer of every published event."""
        self.listeners.append(listener)

    def member(self, name: str) -> SimMember:
        """Look a member up by name."""
        return self.by_name[name]

    # -- running ----------------------------------------------------------------------------

    def at(self, t: float, action: Callable[..., None], *args: Any) -> None:
        """Run `action(*args)` at virtual time `t` (faults, probes, measurements)."""
        self.queue.push(max(t, self.clock.now), action, *args)

    def run_until(self, t_end: float) -> None:
        """Process every queued action due at or before `t_end`, then set the clock to it."""
        heap = self.queue.heap
        clock = self.clock
        pop = heapq.heappop
        steps = 0
        while heap and heap[0][0] <= t_end:
            t, _, action, args = pop(heap)
            clock.now = t
            action(*args)
            steps += 1
        self.steps += steps
        if t_end > clock.now:
            clock.now = t_end

    def run_for(self, duration: float) -> None:
        """`run_until(now + duration)`."""
        self.run_until(self.clock.now + duration)

    def run_until_true(
        self, predicate: Callable[[], bool], limit: float, check: float = 0.1
    ) -> bool:
        """Run in steps of `check` seconds until `predicate()` holds or `limit` is reached."""
        while self.clock.now < limit:
            if predicate():
                return True
            self.run_until(min(limit, self.clock.now + check))
        return predicate()

    def trace_digest(self) -> str:
        """Hex digest of every delivery and timer so far (needs `trace=True`)."""
        if self._trace is None:
            raise RuntimeError("SimCluster(trace=True) is needed for a trace digest")
        return self._trace.hexdigest()

    # -- the driver contract -------------------------------------------------------------------

    def _drain(self, m: SimMember, cause: str) -> None:
        node = m.node
        now = self.clock.now
        for out in node.take_outgoing():
            kind = type(out)
            if kind is Datagram:
                if self.datagram_tap is not None:
                    self.datagram_tap(now, m, out, cause)  # type: ignore[arg-type]
                self._send_datagram(m, out, now)  # type: ignore[arg-type]
                continue
            if kind is StreamSend:
                self._stream_send(m, out, now)  # type: ignore[arg-type]
            elif kind is StreamOpen:
                self._stream_open(m, out, now)  # type: ignore[arg-type]
            elif kind is StreamClose:
                self._stream_close(m, out, now)  # type: ignore[arg-type]
            else:  # pragma: no cover - the Outgoing union is closed
                raise TypeError(f"unknown effect {out!r}")
        events = node.take_events()
        if events:
            if self._trace is not None:
                self._trace.update(f"E{now!r}{m.index}{events!r}".encode())
            for listener in self.listeners:
                listener.on_events(now, m, events, cause)
            if m.state == LEAVING:
                for event in events:
                    if type(event) is LeaveCompleted:
                        self._stop(m, LEFT)
                        return
        if not m.up:
            return
        deadline = node.next_deadline()
        if deadline != m.timer_deadline:
            m.timer_gen += 1
            m.timer_deadline = deadline
            if deadline is not None:
                fire = deadline
                slow = m.slow
                if slow is not None and slow.timers:
                    fire += slow.delay.sample(self.slow_rng)
                if fire < now:
                    fire = now
                heapq.heappush(
                    self.queue.heap, (fire, next(self._seq), self._fire_timer, (m, m.timer_gen))
                )

    def _fire_timer(self, m: SimMember, gen: int) -> None:
        if gen != m.timer_gen or not m.up:
            return
        now = self.clock.now
        deadline = m.timer_deadline
        assert deadline is not None
        m.timer_deadline = None
        if self._trace is not None:
            self._trace.update(f"T{now!r}{m.index}".encode())
        node = m.node
        node.report_loop_lag(now - deadline, now)
        node.handle_timeout(now)
        self._drain(m, "timer")

    # -- datagrams ------------------------------------------------------------------------------

    def _send_datagram(self, m: SimMember, out: Datagram, now: float) -> None:
        data = out.data
        m.msgs_sent += 1
        m.bytes_sent += len(data)
        dst = self.by_addr.get(out.to)
        if dst is None:
            self.network.stats.unroutable += 1
            return
        heap, seq, arrive = self.queue.heap, self._seq, self._arrive_datagram
        for delay in self.network.datagram_delays(m.index, dst.index):
            heapq.heappush(heap, (now + delay, next(seq), arrive, (dst, data, m.addr)))

    def _arrive_datagram(self, m: SimMember, data: bytes, sender: Address) -> None:
        if not m.up:
            return
        slow = m.slow
        if slow is None:
            # Inline of _process_datagram: this is the simulator's hottest path.
            now = self.clock.now
            if self._trace is not None:
                self._trace.update(f"D{now!r}{m.index}{sender!r}".encode())
                self._trace.update(data)
            m.node.receive_datagram(data, sender, now)
            self._drain(m, "input")
            return
        t = self.clock.now + slow.delay.sample(self.slow_rng)
        if slow.fifo:
            t = max(t, m.fifo_time)
            m.fifo_time = t
        self.queue.push(t, self._process_datagram, m, m.epoch, data, sender)

    def _process_datagram(self, m: SimMember, epoch: int, data: bytes, sender: Address) -> None:
        if epoch != m.epoch or not m.up:
            return
        now = self.clock.now
        if self._trace is not None:
            self._trace.update(f"D{now!r}{m.index}{sender!r}".encode())
            self._trace.update(data)
        m.node.receive_datagram(data, sender, now)
        self._drain(m, "input")

    # -- streams (the TCP model) ----------------------------------------------------------------

    def _input_time(self, m: SimMember, arrival: float) -> float:
        """When member `m` gets to process a stream input that arrives at `arrival`."""
        slow = m.slow
        t = arrival
        if slow is not None:
            t += slow.delay.sample(self.slow_rng)
        t = max(t, m.stream_fifo_time)
        m.stream_fifo_time = t
        return t

    def _stream_open(self, m: SimMember, out: StreamOpen, now: float) -> None:
        dst = self.by_addr.get(out.to)
        if dst is None or not dst.up:
            # Nobody listens there: the connect is refused after one round trip.
            rtt = 2 * self.network.default.latency.sample(self.network.rng)
            self.queue.push(now + rtt, self._stream_refused, m, m.epoch, out.stream_id)
            return
        stream = _Stream(m, out.stream_id, dst)
        self._streams[(m.index, m.epoch, out.stream_id)] = stream
        delay = self.network.stream_delay(m.index, dst.index)
        if delay is None:
            stream.last[0] = float("inf")  # SYN lost: the connection never comes up
            return
        t = self._input_time(dst, now + delay)
        stream.last[0] = t
        self.queue.push(t, self._stream_accept, stream)

    def _stream_refused(self, m: SimMember, epoch: int, stream_id: int) -> None:
        if epoch == m.epoch and m.up:
            m.node.stream_closed(stream_id, self.clock.now, "connection refused")
            self._drain(m, "input")

    def _stream_accept(self, stream: _Stream) -> None:
        b = stream.b
        if stream.b_epoch != b.epoch or not b.up:
            return
        now = self.clock.now
        peer_id = b.node.stream_accepted(stream.a.addr, now)
        stream.b_id = peer_id
        self._streams[(b.index, b.epoch, peer_id)] = stream
        self._drain(b, "input")

    def _stream_send(self, m: SimMember, out: StreamSend, now: float) -> None:
        m.msgs_sent += 1
        m.bytes_sent += len(out.data)
        stream = self._streams.get((m.index, m.epoch, out.stream_id))
        if stream is None:
            return  # the peer reset it already; the write is lost like on a dead socket
        self._segment(stream, m is stream.a, out.data, now)

    def _stream_close(self, m: SimMember, out: StreamClose, now: float) -> None:
        stream = self._streams.pop((m.index, m.epoch, out.stream_id), None)
        if stream is None:
            return
        from_a = m is stream.a
        if from_a:
            stream.a_open = False
        else:
            stream.b_open = False
        self._segment(stream, from_a, None, now)

    def _segment(self, stream: _Stream, from_a: bool, data: bytes | None, now: float) -> None:
        """Queue data (or EOF when `data` is None) in one direction, in order."""
        src, dst = (stream.a, stream.b) if from_a else (stream.b, stream.a)
        d = 0 if from_a else 1
        if stream.last[d] == float("inf"):
            return  # stalled for good: the sender's own deadline will close it
        delay = self.network.stream_delay(src.index, dst.index)
        if delay is None:
            stream.last[d] = float("inf")
            return
        t = max(now + delay, stream.last[d])
        t = self._input_time(dst, t)
        stream.last[d] = t
        self.queue.push(t, self._stream_deliver, stream, from_a, data)

    def _stream_deliver(self, stream: _Stream, from_a: bool, data: bytes | None) -> None:
        if from_a:
            dst, epoch, sid, open_ = stream.b, stream.b_epoch, stream.b_id, stream.b_open
        else:
            dst, epoch, sid, open_ = stream.a, stream.a_epoch, stream.a_id, stream.a_open
        if sid is None or epoch != dst.epoch or not dst.up or not open_:
            return
        now = self.clock.now
        if self._trace is not None:
            self._trace.update(f"S{now!r}{dst.index}{sid}{data!r}".encode())
        if data is None:
            # EOF: the peer closed its side; our side is done too once we are told.
            if from_a:
                stream.b_open = False
            else:
                stream.a_open = False
            self._streams.pop((dst.index, dst.epoch, sid), None)
            dst.node.stream_closed(sid, now, None)
        else:
            dst.node.stream_data(sid, data, now)
        self._drain(dst, "input")

    def _reset_streams_of(self, m: SimMember) -> None:
        """The process in slot `m` died: its peers see a reset after one network delay."""
        now = self.clock.now
        doomed: dict[int, _Stream] = {}
        for stream in self._streams.values():
            if (stream.a is m and stream.a_epoch == m.epoch) or (
                stream.b is m and stream.b_epoch == m.epoch
            ):
                doomed[id(stream)] = stream
        for stream in doomed.values():
            self._streams.pop((stream.a.index, stream.a_epoch, stream.a_id), None)
            if stream.b_id is not None:
                self._streams.pop((stream.b.index, stream.b_epoch, stream.b_id), None)
            peer_id: int | None
            if stream.b is m:
                peer, peer_id, peer_epoch, peer_open = (
                    stream.a,
                    stream.a_id,
                    stream.a_epoch,
                    stream.a_open,
                )
            else:
                peer, peer_id, peer_epoch, peer_open = (
                    stream.b,
                    stream.b_id,
                    stream.b_epoch,
                    stream.b_open,
                )
            stream.a_open = stream.b_open = False
            if peer_id is None or not peer_open:
                continue
            delay = self.network.stream_delay(m.index, peer.index)
            if delay is not None:
                self.queue.push(now + delay, self._stream_reset, peer, peer_epoch, peer_id)

    def _stream_reset(self, m: SimMember, epoch: int, stream_id: int) -> None:
        if epoch == m.epoch and m.up:
            m.node.stream_closed(stream_id, self.clock.now, "connection reset")
            self._drain(m, "input")

    # -- faults ---------------------------------------------------------------------------------

    def _stop(self, m: SimMember, state: str) -> None:
        self._reset_streams_of(m)
        m.state = state
        m.down_at = self.clock.now
        m.epoch += 1
        m.timer_gen += 1
        m.timer_deadline = None

    def crash(self, name: str) -> None:
        """Kill the process now: no goodbye, its peers must detect it."""
        m = self.by_name[name]
        if m.up:
            self._stop(m, CRASHED)

    def restart(self, name: str, seeds: Sequence[str] = ()) -> None:
        """Start a fresh node under the same name and address, then join `seeds`."""
        m = self.by_name[name]
        if m.up:
            raise RuntimeError(f"{name} is running; crash or leave it first")
        m.restarts += 1
        m.epoch += 1
        m.node = self._new_node(name, m.addr, m.restarts)
        m.state = UP
        m.down_at = None
        m.fifo_time = m.stream_fifo_time = self.clock.now
        m.timer_deadline = None
        m.timer_gen += 1
        live = [self.by_name[s].addr for s in seeds if s != name]
        if live:
            m.node.join(live, self.clock.now)
        self._drain(m, "input")

    def leave(self, name: str, timeout: float = 5.0) -> None:
        """Graceful leave: the node broadcasts its departure and stops on LeaveCompleted."""
        m = self.by_name[name]
        if m.state != UP:
            return
        m.state = LEAVING
        m.node.leave(self.clock.now, timeout)
        self._drain(m, "input")

    def set_slow(self, name: str, spec: SlowSpec | None) -> None:
        """Make a member slow (or healthy again with None). Pending inputs keep their times."""
        m = self.by_name[name]
        m.slow = spec
        if spec is not None:
            m.ever_slow = True
        m.fifo_time = max(m.fifo_time, self.clock.now)

    def update_meta(self, name: str, meta: bytes) -> None:
        """Change a member's metadata (an alive update with a new incarnation)."""
        m = self.by_name[name]
        if m.up:
            m.node.update_meta(meta, self.clock.now)
            self._drain(m, "input")

    def call(self, name: str, fn: Callable[[SimNode, float], None]) -> None:
        """Run `fn(node, now)` on a live member and honour the driver contract afterwards."""
        m = self.by_name[name]
        if m.up:
            fn(m.node, self.clock.now)
            self._drain(m, "input")

    # -- inspection -----------------------------------------------------------------------------

    def live(self) -> list[SimMember]:
        """Members whose process is running, in index order."""
        return [m for m in self.members if m.up]

    def view(self, name: str) -> dict[str, Member]:
        """What member `name` currently believes about everyone, by name."""
        return {mem.name: mem for mem in self.by_name[name].node.members()}
