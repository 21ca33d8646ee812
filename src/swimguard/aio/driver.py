"""`Driver`: the asyncio side of the driver contract, for any node implementing `NodeAPI`.

Theory of operation (docs/architecture.md): every input (a datagram, stream bytes, a
stream ending, the timer, an API call) is handed to the node with `now = loop.time()`;
then `drain()` performs every outgoing effect in order, hands every event to the
owner's callback, and re-arms the one timer at `node.next_deadline()`. When the timer
fires, its lateness is reported with `report_loop_lag` before `handle_timeout`, so a
process whose loop is blocked by the host application learns that it is the slow one.

An exception out of the node is a bug: it is counted as `internal_error` and logged,
and the driver goes on (a core bug must not kill the socket callbacks). Nothing here
decides protocol behaviour; the node (a `Node`, or a `SerfNode`) does.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from collections.abc import Callable, Mapping
from typing import TypeVar

from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.drop_log import DropLogger
from swimguard.aio.event_tally import EventTally
from swimguard.aio.gray_fault import GrayFault
from swimguard.aio.listener import Listener
from swimguard.aio.tcp import StreamManager
from swimguard.aio.udp import UdpEndpoint
from swimguard.errors import UsageError
from swimguard.protocol.api import NodeAPI
from swimguard.protocol.events import Event
from swimguard.protocol.outgoing import Address, Datagram, StreamClose, StreamOpen, StreamSend
from swimguard.protocol.stats import TransportStats
from swimguard.serf.node import SerfNode, SerfNodeEvent

__all__ = ["DrivenNode", "Driver", "NodeEvent"]

log = logging.getLogger("swimguard.agent")

T = TypeVar("T")

DrivenNode = NodeAPI | SerfNode
"""A node the driver can drive: a plain `NodeAPI` or a `SerfNode` (which adds Serf events)."""

NodeEvent = Event | SerfNodeEvent
"""What a driven node's `take_events()` may return."""


class Driver:
    """Feeds one node from sockets and one timer, and performs what it asks for.

    Built once the node exists; `open()` puts the bound sockets under it (the stream
    manager reports to the driver: it is its `StreamSink`), `aclose()` closes them.
    `on_event` receives every event, in order; `drops_for_log` is what the periodic drop
    log reports.
    """

    def __init__(
        self,
        node: DrivenNode,
        loop: asyncio.AbstractEventLoop,
        *,
        name: str,
        on_event: Callable[[NodeEvent], None],
        drop_logger: DropLogger,
        drops_for_log: Callable[[], Mapping[str, int]],
    ) -> None:
        self.node = node
        self.drops: collections.Counter[str] = collections.Counter()
        self.last_lag = 0.0
        self.stats = TransportStats()
        self.tally = EventTally()
        self._loop = loop
        self._name = name
        self._on_event = on_event
        self._drop_logger = drop_logger
        self._drops_for_log = drops_for_log
        self._udp: UdpEndpoint | None = None
        self._listener: Listener | None = None
        self._streams: StreamManager | None = None
        self.gray: GrayFault | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._last_now = 0.0
        self._draining = False
        self._closed = False

    async def open(
        self, udp_sock: socket.socket, tcp_sock: socket.socket, options: AgentConfig
    ) -> None:
        """Serve the bound sockets, then drain the node's first outputs."""
        loop = self._loop
        on_datagram: Callable[[bytes, Address], None] = self.on_datagram
        gray = None
        if options.gray_fault is not None:  # tests and benchmarks only: input read late
            gray = GrayFault(
                options.gray_fault, name=self._name, loop=loop, count_drop=self.count_drop
            )
            self.gray = gray
            on_datagram = gray.delay_datagrams(on_datagram)
        streams = StreamManager(
            loop,
            self,
            options,
            self.count_drop,
            delay_reply=gray.delay_reply if gray is not None and gray.dialed else None,
        )
        self._streams = streams
        udp = UdpEndpoint(on_datagram, self.count_drop)
        await loop.create_datagram_endpoint(lambda: udp, sock=udp_sock)
        self._udp = udp
        self._listener = Listener(
            loop,
            tcp_sock,
            streams.protocol_factory,
            self.count_drop,
            admit=gray.admit_stream if gray is not None else None,
        )
        if gray is not None:
            gray.start()
        self.drain()

    async def aclose(self) -> None:
        """Stop feeding the node, cancel the timer and close every socket."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.gray is not None:
            self.gray.close()
        if self._udp is not None:
            self._udp.close()
        if self._listener is not None:
            await self._listener.close()
        if self._streams is not None:
            await self._streams.close_all()

    @property
    def open_connections(self) -> int:
        """TCP connections (and connect attempts) currently open."""
        return 0 if self._streams is None else self._streams.open_connections

    def count_drop(self, reason: str) -> None:
        self.drops[reason] += 1

    # -- inputs -------------------------------------------------------------------------

    def now(self) -> float:
        # The core expects non-decreasing time; loop.time() is monotonic, and the max()
        # only guards against the timer's own clamping.
        now = self._loop.time()
        if now < self._last_now:
            now = self._last_now
        self._last_now = now
        return now

    def input(self, call: Callable[[float], object]) -> None:
        """Call `call(now)` (an input of the node), then drain. Ignored once closed."""
        if self._closed:
            return
        try:
            call(self.now())
        except Exception:  # a core bug must not kill the socket callbacks
            self._internal_error()
        self.drain()

    def call(self, call: Callable[[float], T]) -> T:
        """An API call: `call(now)`, then drain; what the node raises reaches the caller.

        Unlike the socket inputs, a refusal here (a value over a limit) is the caller's
        mistake and must be raised where it was made, not counted and logged. The node
        validates before it changes state, so a refused call leaves it as it was.
        """
        if self._closed:
            raise UsageError("the agent is closed")
        try:
            return call(self.now())
        finally:
            self.drain()

    # The socket callbacks below call the node directly (no closure, no helper), so one
    # datagram crosses as few frames as possible on its way to the node and back out.

    def on_datagram(self, data: bytes, sender: Address) -> None:
        if self._closed:
            return
        self.stats.udp_received_bytes += len(data)
        try:
            self.node.receive_datagram(data, sender, now=self.now())
        except Exception:
            self._internal_error()
        self.drain()

    def stream_accepted(self, peer: Address, bind: Callable[[int], None]) -> None:
        """`StreamSink`: an inbound TCP connection from `peer`."""
        if self._closed:
            return
        self.stats.tcp_accept += 1
        try:
            bind(self.node.stream_accepted(peer, now=self.now()))
        except Exception:
            self._internal_error()
        self.drain()

    def stream_data(self, stream_id: int, data: bytes, max_work: int) -> bool:
        """`StreamSink`: bytes on a stream; True while the core holds unparsed bytes."""
        if self._closed:
            return False
        pending = False
        try:
            pending = self.node.stream_data(stream_id, data, now=self.now(), max_work=max_work)
        except Exception:
            self._internal_error()
        self.drain()
        return pending

    def stream_closed(self, stream_id: int, error: str | None) -> None:
        """`StreamSink`: a stream ended without the core asking."""
        if self._closed:
            return
        try:
            self.node.stream_closed(stream_id, now=self.now(), error=error)
        except Exception:
            self._internal_error()
        self.drain()

    def _on_timer(self) -> None:
        deadline = self._deadline
        self._timer = None
        self._deadline = None
        if self._closed or deadline is None:
            return
        node = self.node
        now = self.now()
        lag = max(0.0, now - deadline)
        self.last_lag = lag
        self.stats.loop_lag.observe(lag)
        try:
            node.report_loop_lag(lag, now=now)
            node.handle_timeout(now=now)
        except Exception:
            self._internal_error()
        self.drain()
        if self._drop_logger.due(now):
            self._drop_logger.maybe_log(now, self._drops_for_log())

    def _internal_error(self) -> None:
        self.drops["internal_error"] += 1
        log.exception("%s: protocol core raised on input", self._name)

    # -- perform effects, hand events on, re-arm ------------------------------------------

    def drain(self) -> None:
        node = self.node
        if self._draining or self._closed:
            return
        self._draining = True
        try:
            while True:
                outgoing = node.take_outgoing()
                events = node.take_events()
                if not outgoing and not events:
                    break
                for effect in outgoing:
                    self._perform(effect)
                for event in events:
                    self.tally.count(event)
                    self._on_event(event)
        except Exception:
            self.drops["internal_error"] += 1
            log.exception("%s: error while draining the protocol core", self._name)
        finally:
            self._draining = False
        self._rearm()

    def _perform(self, effect: object) -> None:
        streams = self._streams
        assert streams is not None
        assert self._udp is not None
        stats = self.stats
        if isinstance(effect, Datagram):
            stats.udp_sent_bytes += len(effect.data)
            self._udp.send(effect.to, effect.data)
        elif isinstance(effect, StreamSend):
            stats.tcp_sent_bytes += len(effect.data)
            streams.send(effect.stream_id, effect.data)
        elif isinstance(effect, StreamOpen):
            stats.tcp_connect += 1
            streams.open(effect.stream_id, effect.to)
        elif isinstance(effect, StreamClose):
            streams.close(effect.stream_id)
        else:
            self.drops["unknown_effect"] += 1

    def _rearm(self) -> None:
        if self._closed:
            return
        deadline = self.node.next_deadline()
        if deadline == self._deadline and (deadline is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)
