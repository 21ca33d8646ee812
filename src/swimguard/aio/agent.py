"""`Agent`: one protocol `Node` driven by asyncio sockets and a single timer.

Theory of operation (the driver contract of docs/architecture.md): every
input (a datagram, stream bytes, a stream ending, the timer, an API call) is
handed to the node with `now = loop.time()`; then `_drain()` performs every
outgoing effect in order, publishes every event, and re-arms the one timer at
`node.next_deadline()`. When the timer fires, its lateness is reported with
`report_loop_lag` before `handle_timeout`, so a process whose loop is blocked
by the host application learns that it is the slow one (loop-lag health).

Nothing here decides protocol behaviour; it only moves bytes, bounds
resources (see `AgentConfig`) and counts what it had to drop.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.drop_log import DropLogger
from swimguard.aio.event_buffer import EventBuffer, EventsLost
from swimguard.aio.listener import Listener
from swimguard.aio.sockets import (
    bind_pair,
    default_advertise_host,
    is_ip,
    parse_address,
    resolve_host,
)
from swimguard.aio.tcp import StreamManager
from swimguard.aio.udp import UdpEndpoint
from swimguard.config import Config
from swimguard.errors import JoinError, UsageError
from swimguard.protocol.api import NodeAPI
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
    PingCompleted,
    RemoteState,
    UserMessage,
)
from swimguard.protocol.members import Member
from swimguard.protocol.names import check_local_name
from swimguard.protocol.outgoing import (
    Address,
    Datagram,
    StreamClose,
    StreamOpen,
    StreamSend,
)
from swimguard.serf import SerfBroadcast, SerfDirect, SerfLayer, SerfMessageType, encode_tags
from swimguard.wire.encryption import Keyring

__all__ = ["Agent", "AgentEvent", "EventsLost", "seed_family_problem"]

log = logging.getLogger("swimguard.agent")

AgentEvent = Event | EventsLost | object
"""What `Agent.events()` yields: membership events (`MemberJoined`, `MemberLeft`,
`MemberFailed`, `MemberUpdated`, `MemberSuspected`), `UserMessage`, `NameConflict`,
Serf events from `swimguard.serf` when `serf_compat` is on, and `EventsLost`."""

NodeFactory = Callable[..., NodeAPI]
"""Builds the node: called as `factory(config, name=, advertise=, rng=, now=, hooks=,
keyring=, label=)`; the default is `swimguard.protocol.Node`."""

# Events the application sees; the rest are the driver's business.
_PUBLISHED = (
    MemberJoined,
    MemberUpdated,
    MemberSuspected,
    MemberFailed,
    MemberLeft,
    UserMessage,
    NameConflict,
)
DEFAULT_PORT = 7946
"""memberlist's default port, used when a bind or seed string has none."""
_SERF_TYPES = frozenset(int(t) for t in SerfMessageType)


def seed_family_problem(bind_host: str, seed_host: str) -> str | None:
    """Why an agent bound to `bind_host` cannot use UDP with `seed_host`, or None if it can.

    Both are IP literals. Every datagram leaves from the bound socket, so an IPv4
    socket cannot reach an IPv6 peer, and an IPv6 socket reaches IPv4 peers only
    when it is the dual-stack wildcard `::`. Such a join would succeed over TCP and
    leave a member that can neither probe nor gossip with its cluster.
    """
    bind_ip = ipaddress.ip_address(bind_host)
    seed_ip = ipaddress.ip_address(seed_host)
    if bind_ip.version == seed_ip.version:
        return None
    if bind_ip.version == 6 and bind_ip.is_unspecified:
        return None
    return (
        f"seed {seed_host} is IPv{seed_ip.version} but the agent is bound to "
        f"IPv{bind_ip.version} address {bind_host}: UDP between them is impossible"
        + (" (bind to :: to serve both)" if seed_ip.version == 4 else "")
    )


def _resolve_reachable(host: str, bind_host: str) -> str:
    """Resolve a seed name, preferring an address the bound socket can reach by UDP.

    A name with both A and AAAA records ("localhost" on many hosts) then joins
    an IPv4-bound agent over IPv4 instead of being refused for its IPv6 address.
    Blocking: run it in an executor.
    """
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    ips = [str(info[4][0]) for info in infos]
    if not ips:
        raise OSError(f"cannot resolve {host!r}")
    for ip in ips:
        if seed_family_problem(bind_host, ip) is None:
            return ip
    return ips[0]  # none reachable: join() refuses it, naming the seed


def _default_node_factory(config: Config, **kwargs: Any) -> NodeAPI:
    from swimguard.protocol.node import Node

    node: NodeAPI = Node(config, **kwargs)
    return node


class _AgentHooks:
    """The hooks object handed to the node: our metadata and Serf's push/pull state.

    Every other hook (and the state hook, when the application brings one) is
    forwarded to the application's own hooks object, found by attribute, so the
    node's per-protocol `isinstance` checks see exactly what the application
    implements.
    """

    def __init__(self, agent: Agent, user: object | None) -> None:
        self._agent = agent
        self._user = user
        serf = agent._serf
        if serf is not None and not (
            hasattr(user, "local_state") and hasattr(user, "merge_remote_state")
        ):
            self.local_state = serf.local_state
            self.merge_remote_state = serf.merge_remote_state

    def node_meta(self, limit: int) -> bytes:
        """Our metadata at start: tags/meta given to the Agent, else the application's hook."""
        if self._agent._meta:
            return self._agent._meta
        user_meta = getattr(self._user, "node_meta", None)
        return bytes(user_meta(limit)) if callable(user_meta) else b""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self._user is None:
            raise AttributeError(name)
        return getattr(self._user, name)


class Agent:
    """A cluster member on real sockets: `async with Agent("a", bind="127.0.0.1:0") as a:`.

    One UDP socket and one TCP listener share the bound port (port 0 picks one
    free for both). `advertise` defaults to the bound address (for a wildcard
    bind, the host's outbound IP). Encryption: pass `keyring` (first key is
    primary) and/or `label`. Metadata: raw `meta` bytes, or Serf `tags` (which
    take precedence). With `serf_compat` (default), the agent speaks enough of
    Serf that Serf agents see it join and leave properly; user messages whose
    first byte is a Serf message type (0-9) are then handled by the Serf layer
    (its events appear in `events()`) instead of surfacing as `UserMessage`.

    Not thread-safe: use it from the event loop that entered it.
    """

    def __init__(
        self,
        name: str,
        *,
        bind: str | Address = ("127.0.0.1", 0),
        advertise: str | Address | None = None,
        config: Config | None = None,
        keyring: Keyring | Sequence[bytes] | None = None,
        label: str | bytes = b"",
        meta: bytes = b"",
        tags: Mapping[str, str] | None = None,
        serf_compat: bool = True,
        hooks: object | None = None,
        options: AgentConfig | None = None,
        rng: random.Random | None = None,
        node_factory: NodeFactory | None = None,
    ) -> None:
        check_local_name(name)  # BadNameError (a ValueError) before any socket is bound
        self.name = name
        self.config = config if config is not None else Config.lan()
        self.options = options if options is not None else AgentConfig()
        self._bind_request = (
            parse_address(bind, default_port=DEFAULT_PORT) if isinstance(bind, str) else bind
        )
        if isinstance(advertise, str):
            self._advertise_request: Address | None = parse_address(advertise, default_port=0)
        else:
            self._advertise_request = advertise
        if keyring is None or isinstance(keyring, Keyring):
            self._keyring = keyring
        else:
            self._keyring = Keyring(list(keyring)) if keyring else None
        self._label = label.encode() if isinstance(label, str) else bytes(label)
        self._tags = dict(tags) if tags is not None else None
        self._meta = encode_tags(self._tags) if self._tags is not None else bytes(meta)
        # The Serf layer shares the node's keyring so `serf keys` queries take effect.
        self._serf = (
            SerfLayer(name, tags=self._tags, keyring=self._keyring) if serf_compat else None
        )
        self._hooks = hooks
        self._rng = rng if rng is not None else random.Random()
        self._node_factory = node_factory or _default_node_factory

        self._loop: asyncio.AbstractEventLoop | None = None
        self._node: NodeAPI | None = None
        self._udp: UdpEndpoint | None = None
        self._listener: Listener | None = None
        self._streams: StreamManager | None = None
        self._bound: Address | None = None
        self._advertise: Address | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._last_now = 0.0
        self._draining = False
        self._closed = False
        self._started = False
        self._driver_drops: collections.Counter[str] = collections.Counter()
        self._events: EventBuffer[AgentEvent] = EventBuffer(self.options.event_buffer)
        self._join_waiters: collections.deque[asyncio.Future[JoinCompleted]] = (
            collections.deque()
        )
        self._leave_waiters: list[asyncio.Future[LeaveCompleted]] = []
        self._join_lock = asyncio.Lock()
        self._drop_logger = DropLogger(log, self.options.drop_log_interval, name)
        self._last_lag = 0.0

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind the sockets and start the node (emits our own `MemberJoined`)."""
        if self._started:
            raise UsageError("Agent already started")
        self._started = True
        loop = asyncio.get_running_loop()
        self._loop = loop
        host, port = self._bind_request
        if not is_ip(host):
            host = await loop.run_in_executor(None, resolve_host, host)
        udp_sock, tcp_sock = bind_pair(
            host,
            port,
            attempts=self.options.bind_attempts,
            udp_receive_buffer=self.options.udp_receive_buffer_bytes,
        )
        try:
            bound_port = udp_sock.getsockname()[1]
            self._bound = (host, bound_port)
            self._advertise = await self._resolve_advertise(host, bound_port)
            now = self._now()
            self._node = self._node_factory(
                self.config,
                name=self.name,
                advertise=self._advertise,
                rng=self._rng,
                now=now,
                hooks=self._make_hooks(),
                keyring=self._keyring,
                label=self._label,
            )
            self._streams = StreamManager(loop, self, self.options, self._count_drop)
            udp = UdpEndpoint(self._on_datagram, self._count_drop)
            await loop.create_datagram_endpoint(lambda: udp, sock=udp_sock)
            self._udp = udp
            self._listener = Listener(
                loop, tcp_sock, self._streams.protocol_factory, self._count_drop
            )
        except BaseException:
            udp_sock.close()
            tcp_sock.close()
            await self.close()
            raise
        self._drain()
        log.debug("%s: listening on %s, advertising %s", self.name, self._bound, self._advertise)

    async def close(self) -> None:
        """Stop at once without leaving (peers will detect us as failed); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._udp is not None:
            self._udp.close()
        if self._listener is not None:
            await self._listener.close()
        if self._streams is not None:
            await self._streams.close_all()
        for join_waiter in self._join_waiters:
            if not join_waiter.done():
                join_waiter.set_exception(UsageError("agent closed"))
        for leave_waiter in self._leave_waiters:
            if not leave_waiter.done():
                leave_waiter.set_exception(UsageError("agent closed"))
        self._join_waiters.clear()
        self._leave_waiters.clear()
        self._events.close()
        # The UDP transport closes its socket on a later loop turn; let it (and any
        # late callback) run, or the socket would outlive the agent.
        for _ in range(4):
            await asyncio.sleep(0)

    async def _resolve_advertise(self, bind_host: str, bound_port: int) -> Address:
        if self._advertise_request is None:
            return default_advertise_host(bind_host), bound_port
        host, port = self._advertise_request
        if not is_ip(host):
            assert self._loop is not None
            host = await self._loop.run_in_executor(None, resolve_host, host)
        return host, port or bound_port

    def _make_hooks(self) -> object:
        return _AgentHooks(self, self._hooks)

    # -- public API -----------------------------------------------------------

    @property
    def bound_address(self) -> Address:
        """The `(ip, port)` both sockets are bound to."""
        if self._bound is None:
            raise UsageError("Agent not started")
        return self._bound

    @property
    def advertise_address(self) -> Address:
        """The `(ip, port)` peers are told to use."""
        if self._advertise is None:
            raise UsageError("Agent not started")
        return self._advertise

    @property
    def local_member(self) -> Member:
        """Our own member record."""
        return self._require_node().local_member

    def members(self) -> list[Member]:
        """Every known member, in any state (alive, suspect, dead, left)."""
        return self._require_node().members()

    @property
    def health_score(self) -> int:
        """Lifeguard awareness score (0 = healthy); includes loop-lag input when on."""
        return self._require_node().health_score

    @property
    def last_loop_lag(self) -> float:
        """Lateness of the last timer callback, in seconds."""
        return self._last_lag

    @property
    def drops(self) -> dict[str, int]:
        """Dropped-input counters by reason: the core's, the driver's and the Serf layer's."""
        counts: dict[str, int] = {}
        if self._node is not None:
            counts.update(self._node.drops)
        for reason, n in self._driver_drops.items():
            counts[reason] = counts.get(reason, 0) + n
        if self._serf is not None:
            for reason, n in self._serf.drops.items():
                counts[f"serf_{reason}"] = n
        if self._events.total_lost:
            counts["events_lost"] = self._events.total_lost
        return counts

    @property
    def open_connections(self) -> int:
        """TCP connections (and connect attempts) currently open."""
        return 0 if self._streams is None else self._streams.open_connections

    def events(self) -> AsyncIterator[AgentEvent]:
        """Iterate over events from the start of the agent, until it closes.

        A suspected member that refutes is reported by the core as
        `MemberUpdated` (state alive, higher incarnation).

        One consumer: the buffer is shared and bounded (`AgentConfig.event_buffer`);
        when the consumer falls behind, newer events are dropped and an
        `EventsLost(count)` takes their place in the stream.
        """
        return self._events.__aiter__()

    async def join(
        self,
        seeds: Sequence[str | Address],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - bounds the core's exchange, documented
    ) -> int:
        """Push/pull with each seed; return how many answered.

        Raises `JoinError` when none did (or nothing finished within `timeout`,
        by default twice the config's TCP timeout plus a second), and before
        contacting anyone when a seed's address family cannot be reached from
        the bound socket (an IPv6 seed for an IPv4-bound agent).
        """
        node = self._require_node()
        if not seeds:
            raise ValueError("join() needs at least one seed")
        assert self._loop is not None
        addrs = [await self._resolve_seed(seed) for seed in seeds]
        bind_host = self.bound_address[0]
        for seed, addr in zip(seeds, addrs, strict=True):
            problem = seed_family_problem(bind_host, addr[0])
            if problem is not None:
                raise JoinError(f"cannot join through {seed!r}: {problem}")
        limit = timeout if timeout is not None else 2 * self.config.tcp_timeout + 1.0
        # JoinCompleted carries no call id, so joins run one at a time and each
        # takes the next JoinCompleted.
        async with self._join_lock:
            waiter: asyncio.Future[JoinCompleted] = self._loop.create_future()
            self._join_waiters.append(waiter)
            self._input(node.join, addrs)
            try:
                result = await asyncio.wait_for(asyncio.shield(waiter), limit)
            except TimeoutError:
                waiter.cancel()  # a late JoinCompleted finds it done and skips it
                raise JoinError(f"join timed out after {limit:.1f}s") from None
        if result.joined == 0:
            detail = "; ".join(result.errors) or "no reply"
            raise JoinError(f"no seed answered: {detail}")
        if self._serf is not None:
            self._input(node.broadcast, self._serf.join_intent())
        return result.joined

    async def leave(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - passed to the core
        """Leave gracefully; return False if the broadcast did not finish in `timeout`.

        With `serf_compat`, first gossips Serf's leave intent and gives it a
        few gossip rounds to go out, so Serf agents show us as left, not failed.
        The agent keeps running (answering probes) until closed.
        """
        node = self._require_node()
        assert self._loop is not None
        start = self._loop.time()
        if self._serf is not None:
            self._input(node.broadcast, self._serf.leave_intent())
            intent_wait = min(timeout / 2, max(3 * self.config.gossip_interval, 0.1))
            await asyncio.sleep(intent_wait)
        remaining = max(0.0, timeout - (self._loop.time() - start))
        waiter: asyncio.Future[LeaveCompleted] = self._loop.create_future()
        self._leave_waiters.append(waiter)
        now = self._now()
        self._guarded(lambda: node.leave(now, remaining))
        try:
            result = await asyncio.wait_for(asyncio.shield(waiter), remaining + 1.0)
        except TimeoutError:
            waiter.cancel()
            return False
        return not result.timed_out

    def update_meta(self, meta: bytes) -> None:
        """Replace our metadata (at most 512 bytes) and gossip it."""
        node = self._require_node()
        self._meta = bytes(meta)
        self._input(node.update_meta, self._meta)

    def update_tags(self, tags: Mapping[str, str]) -> None:
        """Replace our Serf tags (encoded into metadata) and gossip them."""
        meta = encode_tags(tags)
        self._tags = dict(tags)
        if self._serf is not None:
            self._serf.set_tags(tags)
        self.update_meta(meta)

    def send_best_effort(self, to: str | Address, data: bytes) -> None:
        """Send a user message by UDP (memberlist's `SendBestEffort`)."""
        node = self._require_node()
        self._input(node.send_best_effort, self._literal_address(to), bytes(data))

    def send_reliable(self, to: str | Address, data: bytes) -> None:
        """Send a user message over TCP (memberlist's `SendReliable`); fire and forget."""
        node = self._require_node()
        self._input(node.send_reliable, self._literal_address(to), bytes(data))

    def broadcast(self, data: bytes, key: str | None = None) -> None:
        """Gossip user bytes to every member, piggybacked; a `key` replaces older ones."""
        node = self._require_node()
        now = self._now()
        self._guarded(lambda: node.broadcast(bytes(data), now, key))

    def user_event(self, name: str, payload: bytes = b"", *, coalesce: bool = True) -> None:
        """Gossip a Serf user event (seen by `serf monitor` / event handlers).

        Uses the Serf layer's event clock, so Serf agents deduplicate it the way
        they do their own. Needs `serf_compat`; `ValueError` above Serf's 512 bytes.
        """
        if self._serf is None:
            raise UsageError("user_event() needs serf_compat=True")
        self.broadcast(self._serf.user_event(name, bytes(payload), coalesce=coalesce))

    # -- inputs -----------------------------------------------------------------

    def _now(self) -> float:
        # The core expects non-decreasing time; loop.time() is monotonic, and the
        # max() only guards against the timer's own clamping below.
        loop = self._loop or asyncio.get_running_loop()
        now = loop.time()
        if now < self._last_now:
            now = self._last_now
        self._last_now = now
        return now

    def _input(self, method: Callable[..., object], *args: object) -> None:
        """Call `method(*args, now)` on the node, then drain."""
        if self._closed:
            return
        now = self._now()
        self._guarded(lambda: method(*args, now))

    def _guarded(self, call: Callable[[], object]) -> None:
        try:
            call()
        except Exception:  # a core bug must not kill the socket callbacks
            self._driver_drops["internal_error"] += 1
            log.exception("%s: protocol core raised on input", self.name)
        self._drain()

    def _on_datagram(self, data: bytes, sender: Address) -> None:
        node = self._node
        if node is None or self._closed:
            return
        self._input(node.receive_datagram, data, sender)

    def stream_accepted(self, peer: Address, bind: Callable[[int], None]) -> None:
        """`StreamSink`: an inbound TCP connection from `peer`."""
        node = self._node
        if node is None or self._closed:
            return
        now = self._now()
        self._guarded(lambda: bind(node.stream_accepted(peer, now)))

    def stream_data(self, stream_id: int, data: bytes, max_work: int) -> bool:
        """`StreamSink`: bytes on a stream; True while the core holds unparsed bytes."""
        node = self._node
        if node is None or self._closed:
            return False
        now = self._now()
        pending = False

        def feed() -> None:
            nonlocal pending
            pending = node.stream_data(stream_id, data, now, max_work=max_work)

        self._guarded(feed)
        return pending

    def stream_closed(self, stream_id: int, error: str | None) -> None:
        """`StreamSink`: a stream ended without the core asking."""
        node = self._node
        if node is None or self._closed:
            return
        now = self._now()
        self._guarded(lambda: node.stream_closed(stream_id, now, error))

    def _on_timer(self) -> None:
        node = self._node
        deadline = self._deadline
        self._timer = None
        self._deadline = None
        if node is None or self._closed or deadline is None:
            return
        now = self._now()
        lag = max(0.0, now - deadline)
        self._last_lag = lag

        def fire() -> None:
            node.report_loop_lag(lag, now)
            node.handle_timeout(now)

        self._guarded(fire)
        if self._drop_logger.due(now):
            self._drop_logger.maybe_log(now, self.drops)

    # -- the driver contract: perform effects, publish events, re-arm ------------

    def _drain(self) -> None:
        node = self._node
        if node is None or self._draining or self._closed:
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
                    self._dispatch(event)
        except Exception:
            self._driver_drops["internal_error"] += 1
            log.exception("%s: error while draining the protocol core", self.name)
        finally:
            self._draining = False
        self._rearm(node)

    def _perform(self, effect: object) -> None:
        streams = self._streams
        assert streams is not None
        if isinstance(effect, Datagram):
            assert self._udp is not None
            self._udp.send(effect.to, effect.data)
        elif isinstance(effect, StreamSend):
            streams.send(effect.stream_id, effect.data)
        elif isinstance(effect, StreamOpen):
            streams.open(effect.stream_id, effect.to)
        elif isinstance(effect, StreamClose):
            streams.close(effect.stream_id)
        else:
            self._driver_drops["unknown_effect"] += 1

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, PingCompleted):
            return
        if isinstance(event, JoinCompleted):
            # One event per join() call, in call order; a timed-out call's waiter
            # is cancelled but still takes its (late) event.
            if self._join_waiters:
                waiter = self._join_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(event)
            return
        if isinstance(event, LeaveCompleted):
            for leave_waiter in self._leave_waiters:
                if not leave_waiter.done():
                    leave_waiter.set_result(event)
            self._leave_waiters.clear()
            return
        serf = self._serf
        if isinstance(event, RemoteState):
            # Already merged by the state hook (`_AgentHooks`); publish what it replayed.
            if serf is not None:
                self._publish_serf(serf, serf.take_events())
            return
        if serf is not None:
            if isinstance(event, UserMessage) and event.data and event.data[0] in _SERF_TYPES:
                self._publish_serf(serf, serf.handle_user_message(event.data))
                return
            if isinstance(event, MemberJoined | MemberUpdated):
                serf.note_member(event.member.name, "alive")
            elif isinstance(event, MemberLeft):
                serf.note_member(event.member.name, "left")
            elif isinstance(event, MemberFailed):
                serf.note_member(event.member.name, "failed")
        if isinstance(event, _PUBLISHED):
            self._publish(event)

    def _publish_serf(self, serf: SerfLayer, events: Sequence[object]) -> None:
        for serf_event in events:
            self._publish(serf_event)
        node = self._node
        assert node is not None
        now = self._now()
        for out in serf.take_outgoing():
            if isinstance(out, SerfBroadcast):
                try:
                    node.broadcast(out.data, now)
                except ValueError:
                    # A peer with a larger UDP buffer sent it; memberlist's queue would
                    # never send it either. Not ours to gossip: count, do not raise.
                    self._driver_drops["serf_regossip_too_large"] += 1
            elif isinstance(out, SerfDirect):
                node.send_best_effort(out.to, out.data, now)

    def _publish(self, event: AgentEvent) -> None:
        self._events.put(event)

    def _rearm(self, node: NodeAPI) -> None:
        if self._closed:
            return
        deadline = node.next_deadline()
        if deadline == self._deadline and (deadline is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None:
            assert self._loop is not None
            self._timer = self._loop.call_at(deadline, self._on_timer)

    # -- helpers ------------------------------------------------------------------

    def _count_drop(self, reason: str) -> None:
        self._driver_drops[reason] += 1

    def _require_node(self) -> NodeAPI:
        if self._node is None:
            raise UsageError("Agent not started (use `async with Agent(...)` or `await start()`)")
        return self._node

    async def _resolve_seed(self, seed: str | Address) -> Address:
        if isinstance(seed, str):
            host, port = parse_address(seed, default_port=DEFAULT_PORT)
        else:
            host, port = seed
        if not is_ip(host):
            assert self._loop is not None
            resolve = functools.partial(_resolve_reachable, host, self.bound_address[0])
            try:
                host = await self._loop.run_in_executor(None, resolve)
            except OSError as exc:
                raise JoinError(f"cannot resolve seed {host!r}: {exc}") from None
        return host, port

    @staticmethod
    def _literal_address(to: str | Address) -> Address:
        host, port = parse_address(to) if isinstance(to, str) else to
        if not is_ip(host):
            raise ValueError(f"send needs an IP address, got {host!r}")
        return host, port
