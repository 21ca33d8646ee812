"""The simulator's TCP model: reliable, ordered streams between simulated members.

A connection is opened by one member (a) and accepted by another (b). Each segment (data, or
EOF when a side closes) travels one network delay and is delivered after every earlier
segment in the same direction, then waits its turn in the receiver's stream input queue
(slow members add their drawn delay there). A link the network cannot carry stalls the
direction for good: no segment is lost silently after a gap, the sender's own deadline gives
up on it, as on a real silent drop. Connecting to an address where no process runs is
refused after one round trip; when a process dies, its peers see a reset one delay later.

Every input ends with the cluster's driver contract (`drain`); stale segments of a process
that has since died or restarted are recognised by its epoch and dropped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from swimguard.protocol.outgoing import Address, StreamClose, StreamOpen, StreamSend
from swimguard.sim.clock import EventQueue, VirtualClock
from swimguard.sim.member import SimMember
from swimguard.sim.network import SimNetwork

__all__ = ["TcpModel"]

_STALLED = float("inf")


class _Connection:
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


class TcpModel:
    """Streams of a simulated cluster; it schedules through the cluster's queue only."""

    def __init__(
        self,
        network: SimNetwork,
        queue: EventQueue,
        clock: VirtualClock,
        by_addr: Mapping[Address, SimMember],
        slow_rng: random.Random,
        drain: Callable[[SimMember], None],
        trace: Any = None,
    ) -> None:
        self._network = network
        self._queue = queue
        self._clock = clock
        self._by_addr = by_addr  # the cluster's, read only
        self._slow_rng = slow_rng
        self._drain = drain
        self._trace = trace  # a hashlib object, or None when not tracing
        self._connections: dict[tuple[int, int, int], _Connection] = {}  # (member, epoch, id)

    # -- what the nodes ask for -------------------------------------------------------------

    def open(self, m: SimMember, out: StreamOpen, *, now: float) -> None:
        """`m` connects to `out.to`."""
        dst = self._by_addr.get(out.to)
        if dst is None or not dst.up:
            # Nobody listens there: the connect is refused after one round trip.
            rtt = 2 * self._network.default.latency.sample(self._network.rng)
            self._queue.push(now + rtt, self._refused, m, m.epoch, out.stream_id)
            return
        conn = _Connection(m, out.stream_id, dst)
        self._connections[(m.index, m.epoch, out.stream_id)] = conn
        delay = self._network.stream_delay(m.index, dst.index)
        if delay is None:
            conn.last[0] = _STALLED  # SYN lost: the connection never comes up
            return
        t = self._input_time(dst, now + delay)
        conn.last[0] = t
        self._queue.push(t, self._accept, conn)

    def send(self, m: SimMember, out: StreamSend, *, now: float) -> None:
        """`m` writes on one of its streams."""
        m.msgs_sent += 1
        m.bytes_sent += len(out.data)
        conn = self._connections.get((m.index, m.epoch, out.stream_id))
        if conn is None:
            return  # the peer reset it already; the write is lost like on a dead socket
        self._segment(conn, m is conn.a, out.data, now=now)

    def close(self, m: SimMember, out: StreamClose, *, now: float) -> None:
        """`m` closes its side of a stream: the peer reads EOF after the data before it."""
        conn = self._connections.pop((m.index, m.epoch, out.stream_id), None)
        if conn is None:
            return
        from_a = m is conn.a
        if from_a:
            conn.a_open = False
        else:
            conn.b_open = False
        self._segment(conn, from_a, None, now=now)

    def reset_all_of(self, m: SimMember) -> None:
        """The process in slot `m` died: its peers see a reset after one network delay."""
        now = self._clock.now
        doomed: dict[int, _Connection] = {}
        for conn in self._connections.values():
            if (conn.a is m and conn.a_epoch == m.epoch) or (
                conn.b is m and conn.b_epoch == m.epoch
            ):
                doomed[id(conn)] = conn
        for conn in doomed.values():
            self._connections.pop((conn.a.index, conn.a_epoch, conn.a_id), None)
            if conn.b_id is not None:
                self._connections.pop((conn.b.index, conn.b_epoch, conn.b_id), None)
            peer_id: int | None
            if conn.b is m:
                peer, peer_id, peer_epoch, peer_open = conn.a, conn.a_id, conn.a_epoch, conn.a_open
            else:
                peer, peer_id, peer_epoch, peer_open = conn.b, conn.b_id, conn.b_epoch, conn.b_open
            conn.a_open = conn.b_open = False
            if peer_id is None or not peer_open:
                continue
            delay = self._network.stream_delay(m.index, peer.index)
            if delay is not None:
                self._queue.push(now + delay, self._reset, peer, peer_epoch, peer_id)

    # -- scheduled deliveries ---------------------------------------------------------------

    def _input_time(self, m: SimMember, arrival: float) -> float:
        """When member `m` gets to process a stream input that arrives at `arrival`."""
        slow = m.slow
        t = arrival
        if slow is not None:
            t += slow.delay.sample(self._slow_rng)
        t = max(t, m.stream_fifo_time)
        m.stream_fifo_time = t
        m.record_lag(arrival, t - arrival)
        return t

    def _held(self, m: SimMember, action: Callable[..., None], *args: Any) -> bool:
        """True (and `action` postponed) while `m` is stalled: it reads nothing until then."""
        if self._clock.now < m.stalled_until:
            self._queue.push(m.stalled_until, action, *args)
            return True
        return False

    def _refused(self, m: SimMember, epoch: int, stream_id: int) -> None:
        if self._held(m, self._refused, m, epoch, stream_id):
            return
        if epoch == m.epoch and m.up:
            m.node.stream_closed(stream_id, "connection refused", now=self._clock.now)
            self._drain(m)

    def _accept(self, conn: _Connection) -> None:
        b = conn.b
        if conn.b_epoch != b.epoch or not b.up or self._held(b, self._accept, conn):
            return
        peer_id = b.node.stream_accepted(conn.a.addr, now=self._clock.now)
        conn.b_id = peer_id
        self._connections[(b.index, b.epoch, peer_id)] = conn
        self._drain(b)

    def _segment(self, conn: _Connection, from_a: bool, data: bytes | None, *, now: float) -> None:
        """Queue data (or EOF when `data` is None) in one direction, in order."""
        src, dst = (conn.a, conn.b) if from_a else (conn.b, conn.a)
        d = 0 if from_a else 1
        if conn.last[d] == _STALLED:
            return  # stalled for good: the sender's own deadline will close it
        delay = self._network.stream_delay(src.index, dst.index)
        if delay is None:
            conn.last[d] = _STALLED
            return
        t = max(now + delay, conn.last[d])
        t = self._input_time(dst, t)
        conn.last[d] = t
        self._queue.push(t, self._deliver, conn, from_a, data)

    def _deliver(self, conn: _Connection, from_a: bool, data: bytes | None) -> None:
        if from_a:
            dst, epoch, sid, open_ = conn.b, conn.b_epoch, conn.b_id, conn.b_open
        else:
            dst, epoch, sid, open_ = conn.a, conn.a_epoch, conn.a_id, conn.a_open
        if sid is None or epoch != dst.epoch or not dst.up or not open_:
            return
        if self._held(dst, self._deliver, conn, from_a, data):
            return
        now = self._clock.now
        if self._trace is not None:
            self._trace.update(f"S{now!r}{dst.index}{sid}{data!r}".encode())
        if data is None:
            # EOF: the peer closed its side; our side is done too once we are told.
            if from_a:
                conn.b_open = False
            else:
                conn.a_open = False
            self._connections.pop((dst.index, dst.epoch, sid), None)
            dst.node.stream_closed(sid, None, now=now)
        else:
            dst.node.stream_data(sid, data, now=now)
        self._drain(dst)

    def _reset(self, m: SimMember, epoch: int, stream_id: int) -> None:
        if self._held(m, self._reset, m, epoch, stream_id):
            return
        if epoch == m.epoch and m.up:
            m.node.stream_closed(stream_id, "connection reset", now=self._clock.now)
            self._drain(m)
