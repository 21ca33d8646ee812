"""`Agent`: one node on asyncio sockets: options, lifecycle and the public API.

The node is a `SerfNode` with `serf_compat` (the default), else what `node_factory`
builds (`swimguard.protocol.Node`); `aio.driver.Driver` feeds it and performs what it
asks for (the driver contract of docs/architecture.md). Nothing here decides protocol
behaviour or timing; this module binds sockets, resolves names, turns API calls into
node inputs and hands events to the application.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType

from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.agent_coords import AgentCoordinates
from swimguard.aio.agent_event import AgentEvent, EventRouter
from swimguard.aio.agent_explain import AgentExplain
from swimguard.aio.agent_members import AgentMembers
from swimguard.aio.agent_messaging import AgentMessaging
from swimguard.aio.agent_metrics import AgentMetrics
from swimguard.aio.agent_node import build_node, leave_would_reach_anyone
from swimguard.aio.agent_persist import AgentPersistence
from swimguard.aio.driver import DrivenNode, Driver
from swimguard.aio.drop_log import DropLogger
from swimguard.aio.event_buffer import EventFanout, EventsLost
from swimguard.aio.member_tags import with_tags
from swimguard.aio.sockets import (
    DEFAULT_PORT,
    bind_pair,
    default_advertise_host,
    is_ip,
    parse_address,
    resolve_host,
    resolve_reachable,
    seed_family_problem,
)
from swimguard.config import Config
from swimguard.errors import JoinError, UsageError
from swimguard.protocol.api import NodeBuilder
from swimguard.protocol.members import Member
from swimguard.protocol.names import check_local_name
from swimguard.protocol.outgoing import Address
from swimguard.serf import encode_tags
from swimguard.serf.node import SerfNode
from swimguard.wire.encryption import Keyring

__all__ = ["DEFAULT_PORT", "Agent", "AgentEvent", "EventsLost", "seed_family_problem"]

log = logging.getLogger("swimguard.agent")


class Agent(
    AgentMessaging, AgentExplain, AgentPersistence, AgentMetrics, AgentCoordinates, AgentMembers
):
    """A cluster member on real sockets: `async with Agent("a", bind="127.0.0.1:0") as a:`.

    One UDP socket and one TCP listener share the bound port (port 0 picks one
    free for both). `advertise` defaults to the bound address (for a wildcard
    bind, the host's outbound IP). Encryption: pass `keyring` (first key is
    primary) and/or `label`. Metadata: raw `meta` bytes, or Serf `tags` (which
    take precedence; members then carry `Member.tags`). With `serf_compat`
    (default), the agent speaks enough of Serf that Serf agents see it join and
    leave properly; a user message that is a well-formed Serf message is then
    handled by the Serf layer (its events appear in `events()`), anything else
    surfaces as `UserMessage`. Leaving `async with` leaves gracefully, then closes.
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
        node_factory: NodeBuilder | None = None,
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
        self._node_factory = node_factory

        self._loop: asyncio.AbstractEventLoop | None = None
        self._node: DrivenNode | None = None
        self._driver: Driver | None = None
        self._bound: Address | None = None
        self._advertise: Address | None = None
        self._closed = False
        self._started = False
        self._events: EventFanout[AgentEvent] = EventFanout(self.options.event_buffer)
        self._router = EventRouter(self._events, self._event_filters())
        self._router.tag_members = serf_compat
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
        """Leave gracefully (within `AgentConfig.exit_leave_timeout`), then close."""
        try:
            grace, node = self.options.exit_leave_timeout, self._node
            reachable = node is not None and not self._closed and leave_would_reach_anyone(node)
            if grace > 0 and reachable:
                await self.leave(grace)
        finally:
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
        await self._load_persistence()  # the keyring file's keys are the node's
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
            self._node = build_node(
                self.config,
                name=self.name,
                advertise=self._advertise,
                rng=self._rng,
                now=loop.time(),
                meta=self._meta,
                hooks=self._hooks,
                keyring=self._keyring,
                label=self._label,
                serf_tags=self._tags,
                serf_compat=self._serf_compat,
                factory=self._node_factory,
                options=self.options,
            )
            await self._attach_persistence()  # the snapshot's clocks, before any input
            self._driver = Driver(
                self._node,
                loop,
                name=self.name,
                on_event=self._router.route,
                drop_logger=DropLogger(log, self.options.drop_log_interval, self.name),
                drops_for_log=lambda: self.drops,
            )
            await self._driver.open(udp_sock, tcp_sock, self.options)
            self._start_rejoin()
        except BaseException:
            udp_sock.close()
            tcp_sock.close()
            await self.close()
            raise
        log.debug("%s: listening on %s, advertising %s", self.name, self._bound, self._advertise)

    async def close(self) -> None:
        """Stop at once without leaving (peers will detect us as failed); idempotent.

        The hard stop: `async with` leaves gracefully first (`AgentConfig.exit_leave_timeout`).
        """
        if self._closed:
            return
        self._closed = True
        if self._driver is not None:
            await self._driver.aclose()
        await self._close_persistence()
        self._router.close()
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
        """Our own member record (with `tags` when the agent runs Serf)."""
        member = self._running()[0].local_member
        return with_tags(member) if self._serf_compat else member

    def members(self) -> list[Member]:
        """Every known member, in any state (alive, suspect, dead, left); `tags` with Serf."""
        members = self._running()[0].members()
        return [with_tags(m) for m in members] if self._serf_compat else members

    @property
    def health_score(self) -> int:
        """Lifeguard awareness score (0 = healthy); includes loop-lag input when on."""
        return self._running()[0].health_score

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
        return 0 if self._driver is None else self._driver.open_connections

    def events(self) -> AsyncIterator[AgentEvent]:
        """Iterate over events from the start of the agent, until it closes.

        A suspected member that refutes is reported by the core as
        `MemberUpdated` (state alive, higher incarnation).

        Several consumers may iterate at once, each over its own bounded buffer
        (`AgentConfig.event_buffer`): the first call gets every event since the agent
        was built, each later call the events from then on. When a consumer falls
        behind, newer events are dropped from its buffer only and an `EventsLost(count)`
        takes their place in its stream. When a consumer stops (`break`, `aclose()`),
        the next `events()` call takes its buffer over and goes on where it stopped; a
        buffer nobody reads fills up and counts its losses in `drops["events_lost"]`.
        """
        return self._events.subscribe()

    async def join(
        self,
        seeds: Sequence[str | Address],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - bounds the core's exchange, documented
        replay: bool = True,
    ) -> int:
        """Push/pull with each seed; return how many answered.

        Raises `JoinError` when none did (or nothing finished within `timeout`, by default
        twice the config's TCP timeout plus a second), and before contacting anyone when a
        seed's address family cannot be reached from the bound socket (IPv6 seed, IPv4 bind).
        `replay=False` (serf agent's default) ignores user events from before the join.
        """
        _node, driver = self._running()
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
        # JoinCompleted has no call id: joins run one at a time, each takes the next one.
        async with self._join_lock:
            waiter = self._router.expect_join(self._loop)
            driver.call(lambda now: self._join_input(addrs, replay, now))
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
        (answering probes) until closed. ValueError for a negative or non-finite `timeout`.
        """
        if not 0 <= timeout < float("inf"):  # NaN fails this too
            raise ValueError(f"leave timeout must be finite seconds >= 0, got {timeout!r}")
        node, driver = self._running()
        assert self._loop is not None
        await self._persist_leave()
        waiter = self._router.expect_leave(self._loop)
        driver.call(lambda now: node.leave(now=now, timeout=timeout))
        try:
            result = await asyncio.wait_for(asyncio.shield(waiter), timeout + 1.0)
        except TimeoutError:
            waiter.cancel()
            return False
        return not result.timed_out

    def update_meta(self, meta: bytes) -> None:
        """Replace our metadata (at most 512 bytes) and gossip it."""
        node, driver = self._running()
        new = bytes(meta)
        driver.call(lambda now: node.update_meta(new, now=now))  # ValueError over the limit
        self._meta = new

    def update_tags(self, tags: Mapping[str, str]) -> None:
        """Replace our Serf tags (encoded into metadata) and gossip them."""
        self._running()
        meta = encode_tags(tags)  # ValueError (too large, not str) before anything changes
        self._tags = dict(tags)
        if isinstance(self._node, SerfNode):
            self._node.set_tags(tags)
        self.update_meta(meta)

    # -- helpers ------------------------------------------------------------------

    def _running(self) -> tuple[DrivenNode, Driver]:
        if self._closed:
            raise UsageError("the agent is closed")
        if self._node is None or self._driver is None:
            raise UsageError("Agent not started (use `async with Agent(...)` or `await start()`)")
        return self._node, self._driver

    async def _resolve_seed(self, seed: str | Address) -> Address:
        if isinstance(seed, str):
            host, port = parse_address(seed, default_port=DEFAULT_PORT)
        else:
            host, port = seed
        if not is_ip(host):
            assert self._loop is not None
            resolve = functools.partial(resolve_reachable, host, self.bound_address[0])
            try:
                host = await self._loop.run_in_executor(None, resolve)
            except OSError as exc:
                raise JoinError(f"cannot resolve seed {host!r}: {exc}") from None
        return host, port
