"""SimCluster: many real protocol nodes, one virtual clock, one seeded event queue.

Theory of operation. Every node input goes through the event queue: a datagram arrives at
`send time + link delay`, a timer fires at the node's `next_deadline()` (plus a drawn delay
when the member is slow), and each input is followed by the driver contract of
architecture.md: perform every `take_outgoing()` effect in order, publish every
`take_events()` event to the listeners, re-arm the single timer. Before each
`handle_timeout` the cluster reports the timer's lateness through `report_loop_lag`, exactly
as the asyncio driver does. No protocol rule lives here. Datagrams are delivered here;
streams by the TCP model (`sim/tcp.py`); the network decides delays and losses
(`sim/network.py`); the clock and queue (`sim/clock.py`) are used through their methods.

Determinism: all randomness comes from `random.Random` instances seeded from the cluster
seed (one per node incarnation, one for the network, one for slow delays); ties in the
queue are broken by insertion order; members are kept in a list by index. The same seed and
the same calls therefore give the same trace, and `trace_digest()` proves it.

Members are never removed (see `sim/member.py`): a restart under the same name is a new node
(a new epoch) at the same address.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from swimguard.protocol.api import NodeAPI, NodeFactory
from swimguard.protocol.events import Event, LeaveCompleted, SelfFenced
from swimguard.protocol.members import Member
from swimguard.protocol.outgoing import Address, Datagram, StreamClose, StreamOpen, StreamSend
from swimguard.sim.clock import EventQueue, VirtualClock
from swimguard.sim.member import CRASHED, LEAVING, LEFT, UP, SimMember, address_for
from swimguard.sim.network import LinkModel, SimNetwork
from swimguard.sim.slow import SlowSpec
from swimguard.sim.tcp import TcpModel

__all__ = ["Listener", "SimCluster", "SimMember", "address_for"]

class Listener(Protocol):
    """Receives what the nodes publish. `cause` is "timer" or "input" (what ran the node)."""

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        """Called once per drain that produced events."""


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
        self._factories: dict[str, NodeFactory] = {}  # members built unlike the others
        self.replay_hint = replay_hint
        self._trace = hashlib.blake2b(digest_size=16) if trace else None
        self.tcp = TcpModel(
            self.network,
            self.queue,
            self.clock,
            self.by_addr,
            self.slow_rng,
            self._drain_input,
            self._trace,
        )
        self.steps = 0
        self.datagram_tap: Callable[[float, SimMember, Datagram, str], None] | None = None
        """Optional observer of every datagram sent: (now, sender, datagram, cause)."""

    # -- building ---------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Current virtual time (seconds)."""
        return self.clock.now

    def _new_node(self, name: str, addr: Address, restart: int) -> NodeAPI:
        rng = random.Random(f"{self.seed}/node/{name}/{restart}")
        factory = self._factories.get(name, self.node_factory)
        return factory(name, addr, rng, now=self.clock.now)

    def start_member(self, name: str, seeds: Sequence[str] = ()) -> None:
        """`add_member` for use with `at()` (returns nothing)."""
        self.add_member(name, seeds)

    def add_member(
        self, name: str, seeds: Sequence[str] = (), *, factory: NodeFactory | None = None
    ) -> SimMember:
        """Start a node now; if `seeds` are given it joins them right away.

        `factory` builds this member's nodes (now and after restarts) instead of the
        cluster's: per-member settings such as a keyring, a label or protocol versions.
        """
        if name in self.by_name:
            raise ValueError(f"member {name!r} already exists")
        if factory is not None:
            self._factories[name] = factory
        index = len(self.members)
        addr = address_for(index)
        member = SimMember(index, name, addr, self._new_node(name, addr, 0))
        self.members.append(member)
        self.by_name[name] = member
        self.by_addr[addr] = member
        if seeds:
            member.node.join([self.by_name[s].addr for s in seeds], now=self.clock.now)
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
        self.steps += self.queue.run_until(t_end, self.clock)
        if t_end > self.clock.now:
            self.clock.advance_to(t_end)

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
                self._send_datagram(m, out, now=now)  # type: ignore[arg-type]
                continue
            if kind is StreamSend:
                self.tcp.send(m, out, now=now)  # type: ignore[arg-type]
            elif kind is StreamOpen:
                self.tcp.open(m, out, now=now)  # type: ignore[arg-type]
            elif kind is StreamClose:
                self.tcp.close(m, out, now=now)  # type: ignore[arg-type]
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
            elif m.state == UP and any(type(event) is SelfFenced for event in events):
                # As the agent does: a fenced member leaves gracefully, then stops.
                self.at(now, self.leave, m.name)
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
                self.queue.push(fire, self._fire_timer, m, m.timer_gen)

    def _drain_input(self, m: SimMember) -> None:
        self._drain(m, "input")

    def _fire_timer(self, m: SimMember, gen: int) -> None:
        if gen != m.timer_gen or not m.up:
            return
        now = self.clock.now
        if now < m.stalled_until:
            return  # frozen: `_wake` fires it when the stall ends
        deadline = m.timer_deadline
        assert deadline is not None
        m.timer_deadline = None
        if self._trace is not None:
            self._trace.update(f"T{now!r}{m.index}".encode())
        node = m.node
        node.report_loop_lag(now - deadline, now=now)
        node.handle_timeout(now=now)
        self._drain(m, "timer")

    # -- datagrams ------------------------------------------------------------------------------

    def _send_datagram(self, m: SimMember, out: Datagram, *, now: float) -> None:
        data = out.data
        m.msgs_sent += 1
        m.bytes_sent += len(data)
        dst = self.by_addr.get(out.to)
        if dst is None:
            self.network.stats.unroutable += 1
            return
        push, arrive, sender = self.queue.push, self._arrive_datagram, m.addr
        for delay in self.network.datagram_delays(m.index, dst.index):
            push(now + delay, arrive, dst, data, sender)

    def _arrive_datagram(self, m: SimMember, data: bytes, sender: Address) -> None:
        if not m.up:
            return
        slow = m.slow
        now = self.clock.now
        if slow is None and now >= m.stalled_until:
            # Inline of _process_datagram: this is the simulator's hottest path.
            if self._trace is not None:
                self._trace.update(f"D{now!r}{m.index}{sender!r}".encode())
                self._trace.update(data)
            m.node.receive_datagram(data, sender, now=now)
            self._drain(m, "input")
            return
        t = now
        if slow is not None:
            t += slow.delay.sample(self.slow_rng)
            if slow.fifo:
                t = max(t, m.fifo_time)
                m.fifo_time = t
            m.record_lag(now, t - now)
        self.queue.push(max(t, m.stalled_until), self._process_datagram, m, m.epoch, data, sender)

    def _process_datagram(self, m: SimMember, epoch: int, data: bytes, sender: Address) -> None:
        if epoch != m.epoch or not m.up:
            return
        now = self.clock.now
        if now < m.stalled_until:  # the stall began after this datagram was scheduled
            self.queue.push(m.stalled_until, self._process_datagram, m, epoch, data, sender)
            return
        if self._trace is not None:
            self._trace.update(f"D{now!r}{m.index}{sender!r}".encode())
            self._trace.update(data)
        m.node.receive_datagram(data, sender, now=now)
        self._drain(m, "input")

    # -- faults ---------------------------------------------------------------------------------

    def _stop(self, m: SimMember, state: str) -> None:
        self.tcp.reset_all_of(m)
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
        m.stalled_until = 0.0
        m.timer_deadline = None
        m.timer_gen += 1
        live = [self.by_name[s].addr for s in seeds if s != name]
        if live:
            m.node.join(live, now=self.clock.now)
        self._drain(m, "input")

    def leave(self, name: str, timeout: float = 5.0) -> None:
        """Graceful leave: the node broadcasts its departure and stops on LeaveCompleted."""
        m = self.by_name[name]
        if m.state != UP:
            return
        m.state = LEAVING
        m.node.leave(timeout, now=self.clock.now)
        self._drain(m, "input")

    def set_slow(self, name: str, spec: SlowSpec | None) -> None:
        """Make a member slow (or healthy again with None). Pending inputs keep their times."""
        m = self.by_name[name]
        m.slow = spec
        if spec is not None:
            m.ever_slow = True
        m.fifo_time = max(m.fifo_time, self.clock.now)

    def stall(self, name: str, duration: float) -> None:
        """Freeze a member's process for `duration`, like an event loop blocked by a long call.

        While frozen it reads nothing and no timer fires; what arrives is held. When the
        stall ends the overdue timer fires first (reporting its lateness as loop lag, as the
        asyncio driver would), then the held inputs are read in arrival order: the worst
        case, where a node acts on its timers before it reads the acks that came meanwhile.
        """
        m = self.by_name[name]
        if not m.up:
            return
        until = self.clock.now + duration
        if until > m.stalled_until:
            m.stalled_until = until
            # Pushed before any held input, so at `until` it runs first.
            self.queue.push(until, self._wake, m, m.epoch)

    def _wake(self, m: SimMember, epoch: int) -> None:
        if epoch != m.epoch or not m.up or self.clock.now < m.stalled_until:
            return  # crashed meanwhile, or the stall was extended
        deadline = m.timer_deadline
        if deadline is not None and deadline <= self.clock.now:
            self._fire_timer(m, m.timer_gen)

    def update_meta(self, name: str, meta: bytes) -> None:
        """Change a member's metadata (an alive update with a new incarnation)."""
        m = self.by_name[name]
        if m.up:
            m.node.update_meta(meta, now=self.clock.now)
            self._drain(m, "input")

    def call(self, name: str, fn: Callable[[NodeAPI, float], None]) -> None:
        """Run `fn(node, now)` on a live member and honour the driver contract afterwards."""
        m = self.by_name[name]
        if m.up:
            fn(m.node, self.clock.now)
            self._drain(m, "input")

    # -- inspection -----------------------------------------------------------------------------

    def live(self) -> list[SimMember]:
        """Members whose process is running, in index order."""
        return [m for m in self.members if m.up]

    def node(self, name: str) -> NodeAPI:
        """The node currently running as member `name` (its newest after a restart)."""
        return self.by_name[name].node

    def view(self, name: str) -> dict[str, Member]:
        """What member `name` currently believes about everyone, by name."""
        return {mem.name: mem for mem in self.by_name[name].node.members()}
