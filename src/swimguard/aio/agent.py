"""`Agent`: one node on asyncio sockets: options, lifecycle and the public API.

The node is a `SerfNode` with `serf_compat` (the default), else what `node_factory`
builds (`swimguard.protocol.Node`); `aio.driver.Driver` feeds it and performs what it
asks for (the driver contract of docs/architecture.md). Nothing here decides protocol
behaviour or timing; this module binds sockets, resolves names, turns API calls into
node inputs and hands events to the application.
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
from swimguard.aio.driver import DrivenNode, Driver, NodeEvent
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
    JoinCompleted,
    LeaveCompleted,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
    NameConflict,
    UserMessage,
)
from swimguard.protocol.members import Member
from swimguard.protocol.names import check_local_name
from swimguard.protocol.outgoing import Address
from swimguard.serf import (
    JoinIntentReceived,
    LeaveIntentReceived,
    QueryReceived,
    QueryResponseReceived,
    UserEventReceived,
    encode_tags,
)
from swimguard.serf.node import SerfNode
from swimguard.wire.encryption import Keyring

__all__ = ["Agent", "AgentEvent", "EventsLost", "seed_family_problem"]

log = logging.getLogger("swimguard.agent")

AgentEvent = (
    MemberJoined
    | MemberUpdated
    | MemberSuspected
    | MemberFailed
    | MemberLeft
    | UserMessage
    | NameConflict
    | JoinIntentReceived
    | LeaveIntentReceived
    | UserEventReceived
    | QueryReceived
    | QueryResponseReceived
    | EventsLost
)
"""What `Agent.events()` yields: membership events, `UserMessage`, `NameConflict`, the
Serf events of `swimguard.serf` when `serf_compat` is on, and `EventsLost`."""

NodeFactory = Callable[..., NodeAPI]
"""Builds the node: called as `factory(config, name=, advertise=, rng=, now=, hooks=,
keyring=, label=)`; the default is `swimguard.protocol.Node`."""

# Events the application sees; the rest are the agent's business (join/leave waiters)
# or nobody's (ping round trips, push/pull state already merged).
_PUBLISHED = (
    MemberJoined,
    MemberUpdated,
    MemberSuspected,
    MemberFailed,
    MemberLeft,
    UserMessage,
    NameConflict,
    JoinIntentReceived,
    LeaveIntentReceived,
    UserEventReceived,
    QueryReceived,
    QueryResponseReceived,
)
DEFAULT_PORT = 7946
"""memberlist's default port, used when a bind or seed string has none."""


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


class _MetaHooks:
    """The hooks handed to the node: our metadata at start, the application's for the rest.

    Every other hook is forwarded to the application's object by attribute, so the
    node's per-protocol `isinstance` checks see exactly what the application implements.
    """

    def __init__(self, meta: bytes, user: object | None) -> None:
        self._meta = meta
        self._user = user

    def node_meta(self, limit: int) -> bytes:
        """Tags/meta given to the Agent, else the application's hook."""
        if self._meta:
            return self._meta
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
        self._serf_compat = serf_compat
        self._hooks = hooks
        self._rng = rng if rng is not None else random.Random()
        self._node_factory = node_factory or _default_node_factory

        self._loop: asyncio.AbstractEventLoop | None = None
        self._node: DrivenNode | None = None
        self._driver: Driver | None = None
        self._udp: UdpEndpoint | None = None
        self._listener: Listener | None = None
        self._streams: StreamManager | None = None
        self._bound: Address | None = None
        self._advertise: Address | None = None
        self._closed = False
        self._started = False
        self._events: EventBuffer[AgentEvent] = EventBuffer(self.options.event_buffer)
        self._join_waiters: collections.deque[asyncio.Future[JoinCompleted]] = (
            collections.deque()
        )
        self._leave_waiters: list[asyncio.Future[LeaveCompleted]] = []
        self._join_lock = asyncio.Lock()

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
            self._node = self._make_node(loop.time())
            driver = Driver(
                self._node,
                loop,
                name=self.name,
                on_event=self._on_event,
                drop_logger=DropLogger(log, self.options.drop_log_interval, self.name),
                drops_for_log=lambda: self.drops,
            )
            self._driver = driver
            self._streams = StreamManager(loop, driver, self.options, driver.count_drop)
            udp = UdpEndpoint(driver.on_datagram, driver.count_drop)
            await loop.create_datagram_endpoint(lambda: udp, sock=udp_sock)
            self._udp = udp
            self._listener = Listener(
                loop, tcp_sock, self._streams.protocol_factory, driver.count_drop
            )
            driver.attach(udp, self._streams)
        except BaseException:
            udp_sock.close()
            tcp_sock.close()
            await self.close()
            raise
        driver.drain()
        log.debug("%s: listening on %s, advertising %s", self.name, self._bound, self._advertise)

    async def close(self) -> None:
        """Stop at once without leaving (peers will detect us as failed); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._driver is not None:
            self._driver.close()
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

    def _make_node(self, now: float) -> DrivenNode:
        kwargs: dict[str, Any] = {
            "name": self.name,
            "advertise": self._advertise,
            "rng": self._rng,
            "now": now,
            "hooks": _MetaHooks(self._meta, self._hooks),
            "keyring": self._keyring,
            "label": self._label,
        }
        if self._serf_compat:
            return SerfNode(
                self.config, tags=self._tags, node_factory=self._node_factory, **kwargs
            )
        return self._node_factory(self.config, **kwargs)

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
        return 0.0 if self._driver is None else self._driver.last_lag

    @property
    def drops(self) -> dict[str, int]:
        """Dropped-input counters by reason: the core's, the driver's and the Serf layer's."""
        counts: dict[str, int] = {}
        if self._node is not None:
            counts.update(self._node.drops)
        if self._driver is not None:
            for reason, n in self._driver.drops.items():
                counts[reason] = counts.get(reason, 0) + n
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
        node, driver = self._require_node(), self._require_driver()
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
            driver.input(lambda now: node.join(addrs, now=now))
            try:
                result = await asyncio.wait_for(asyncio.shield(waiter), limit)
            except TimeoutError:
                waiter.cancel()  # a late JoinCompleted finds it done and skips it
                raise JoinError(f"join timed out after {limit:.1f}s") from None
        if result.joined == 0:
            detail = "; ".join(result.errors) or "no reply"
            raise JoinError(f"no seed answered: {detail}")
        return result.joined

    async def leave(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - passed to the core
        """Leave gracefully; return False if the broadcast did not finish in `timeout`.

        With `serf_compat`, the node first gossips Serf's leave intent for a few gossip
        rounds, so Serf agents show us as left, not failed. The agent keeps running
        (answering probes) until closed.
        """
        node, driver = self._require_node(), self._require_driver()
        assert self._loop is not None
        waiter: asyncio.Future[LeaveCompleted] = self._loop.create_future()
        self._leave_waiters.append(waiter)
        driver.input(lambda now: node.leave(now=now, timeout=timeout))
        try:
            result = await asyncio.wait_for(asyncio.shield(waiter), timeout + 1.0)
        except TimeoutError:
            waiter.cancel()
            return False
        return not result.timed_out

    def update_meta(self, meta: bytes) -> None:
        """Replace our metadata (at most 512 bytes) and gossip it."""
        node, driver = self._require_node(), self._require_driver()
        self._meta = bytes(meta)
        driver.input(lambda now: node.update_meta(self._meta, now=now))

    def update_tags(self, tags: Mapping[str, str]) -> None:
        """Replace our Serf tags (encoded into metadata) and gossip them."""
        meta = encode_tags(tags)
        self._tags = dict(tags)
        if isinstance(self._node, SerfNode):
            self._node.set_tags(tags)
        self.update_meta(meta)

    def send_best_effort(self, to: str | Address, data: bytes) -> None:
        """Send a user message by UDP (memberlist's `SendBestEffort`)."""
        node, driver = self._require_node(), self._require_driver()
        addr, payload = self._literal_address(to), bytes(data)
        driver.input(lambda now: node.send_best_effort(addr, payload, now=now))

    def send_reliable(self, to: str | Address, data: bytes) -> None:
        """Send a user message over TCP (memberlist's `SendReliable`); fire and forget."""
        node, driver = self._require_node(), self._require_driver()
        addr, payload = self._literal_address(to), bytes(data)
        driver.input(lambda now: node.send_reliable(addr, payload, now=now))

    def broadcast(self, data: bytes, key: str | None = None) -> None:
        """Gossip user bytes to every member, piggybacked; a `key` replaces older ones."""
        node, driver = self._require_node(), self._require_driver()
        payload = bytes(data)
        driver.input(lambda now: node.broadcast(payload, now=now, key=key))

    def user_event(self, name: str, payload: bytes = b"", *, coalesce: bool = True) -> None:
        """Gossip a Serf user event (seen by `serf monitor` / event handlers).

        Uses the Serf layer's event clock, so Serf agents deduplicate it the way
        they do their own. Needs `serf_compat`; `ValueError` above Serf's 512 bytes.
        """
        if not self._serf_compat:
            raise UsageError("user_event() needs serf_compat=True")
        node, driver = self._require_node(), self._require_driver()
        assert isinstance(node, SerfNode)
        data = bytes(payload)
        # Validated first: a too-large event raises here, not inside the driver.
        node.serf.check_user_event(name, data)
        driver.input(lambda now: node.user_event(name, data, now, coalesce=coalesce))

    # -- what the node reports --------------------------------------------------------

    def _on_event(self, event: NodeEvent) -> None:
        if isinstance(event, JoinCompleted):
            # One event per join() call, in call order; a timed-out call's waiter
            # is cancelled but still takes its (late) event.
            if self._join_waiters:
                waiter = self._join_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(event)
        elif isinstance(event, LeaveCompleted):
            for leave_waiter in self._leave_waiters:
                if not leave_waiter.done():
                    leave_waiter.set_result(event)
            self._leave_waiters.clear()
        elif isinstance(event, _PUBLISHED):
            self._events.put(event)

    # -- helpers ------------------------------------------------------------------

    def _require_node(self) -> DrivenNode:
        if self._node is None:
            raise UsageError("Agent not started (use `async with Agent(...)` or `await start()`)")
        return self._node

    def _require_driver(self) -> Driver:
        if self._driver is None:
            raise UsageError("Agent not started (use `async with Agent(...)` or `await start()`)")
        return self._driver

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
