"""`Node`: the sans-IO SWIM + Lifeguard state machine (memberlist 0.2.2 semantics).

Theory of operation. Every input (a datagram, stream bytes, a timer, an API
call) takes `now`, updates the member table and pushes effects onto two lists
the driver drains: `take_outgoing()` (datagrams and stream operations, already
encoded) and `take_events()`. `next_deadline()` says when `handle_timeout(now)`
must run next; all timers live in one `Deadlines` table keyed by purpose, so a
cancelled timer can never fire.

`Node` is built from layers, one module each: `base` (state) <- `transmit`
(encoding, piggybacking, gossip rounds) <- `membership` (alive/suspect/dead
rules of memberlist's `state.go`) <- `probing` (failure detection, Lifeguard
awareness) <- `streams` (push/pull, TCP ping, reliable messages) <- this module
(public API, timers, datagram dispatch). Where we differ from memberlist is
listed in the `swimguard.protocol` package docstring.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import assert_never

from swimguard.config import META_MAX_SIZE, Config
from swimguard.errors import UsageError
from swimguard.protocol.addresses import bytes_to_host, host_to_bytes
from swimguard.protocol.awareness import Awareness
from swimguard.protocol.base import (
    JoinBatch,
    ProbeState,
    Relay,
    StreamKind,
    StreamState,
)
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.events import (
    Event,
    JoinCompleted,
    LeaveCompleted,
)
from swimguard.protocol.hooks import (
    AliveHook,
    BroadcastHook,
    ConflictHook,
    MergeHook,
    MessageHook,
    MetaHook,
    PingHook,
    StateHook,
)
from swimguard.protocol.members import Member
from swimguard.protocol.names import check_local_name
from swimguard.protocol.outgoing import (
    Address,
    Outgoing,
    StreamOpen,
    StreamSend,
)
from swimguard.protocol.scaling import push_pull_scale
from swimguard.protocol.streams import Streams
from swimguard.protocol.suspicion import Suspicion
from swimguard.protocol.table import MemberTable, SharedView
from swimguard.protocol.timers import (
    LEAVE_TIMEOUT,
    PROBE_INDIRECT,
    PROBE_TICK,
    PROBE_TIMEOUT,
    PUSH_PULL_TICK,
    GossipTick,
    LeaveTimeout,
    ProbeIndirect,
    ProbeTick,
    ProbeTimeout,
    PushPullTick,
    RelayTimeout,
    StreamTimeout,
    SuspicionTimeout,
    Timer,
)
from swimguard.protocol.transmit import Transmitter
from swimguard.protocol.versions import trusts_message_ports, uses_encryption_v1
from swimguard.wire.encryption import Keyring
from swimguard.wire.errors import DecodeError
from swimguard.wire.messages import (
    AckResp,
    Alive,
    Dead,
    IndirectPingReq,
    NackResp,
    Ping,
    Suspect,
)
from swimguard.wire.packet import (
    Message,
    UserData,
    decode_packet,
    encode_message,
)
from swimguard.wire.stream import (
    UserStream,
)

__all__ = ["Node"]


class Node(Streams):
    """One cluster member. See the module docstring and docs/architecture.md.

    `Node(config, name=, advertise=, rng=, now=, hooks=None, keyring=None, label=b"",
    enable_compression=None)`: `advertise` is the (IP text, port) peers reach us at;
    `rng` is the only source of randomness; `hooks` is one object implementing any of
    the protocols in `protocol.hooks`; `keyring`/`label` are handed to the wire codec;
    `enable_compression` overrides `config.enable_compression`.

    Beyond the documented contract: `member(name)`, `num_members`, `has_left`,
    `broadcasts_queued`, `stalls` (loop-lag reports that counted as a stall), `refreshes`
    and `incarnation_restarts`. `name` must pass `protocol.names` (else `BadNameError`).
    """

    def __init__(
        self,
        config: Config,
        *,
        name: str,
        advertise: Address,
        rng: random.Random,
        now: float,
        hooks: object | None = None,
        keyring: Keyring | None = None,
        label: bytes = b"",
        enable_compression: bool | None = None,
    ) -> None:
        check_local_name(name)
        host, port = advertise
        if not 0 < port <= 0xFFFF:
            raise UsageError(f"advertise port out of range: {port}")
        try:
            addr_bytes = host_to_bytes(host)
        except ValueError:
            raise UsageError(f"advertise host must be an IP literal, got {host!r}") from None
        if len(label) > 255:
            raise UsageError("label longer than 255 bytes")
        self.config = config
        self.name = name
        self._rng = rng
        self._addr_bytes = addr_bytes
        self._advertise: Address = (bytes_to_host(addr_bytes) or host, port)

        self._meta_hook = hooks if isinstance(hooks, MetaHook) else None
        self._message_hook = hooks if isinstance(hooks, MessageHook) else None
        self._state_hook = hooks if isinstance(hooks, StateHook) else None
        self._conflict_hook = hooks if isinstance(hooks, ConflictHook) else None
        self._merge_hook = hooks if isinstance(hooks, MergeHook) else None
        self._alive_hook = hooks if isinstance(hooks, AliveHook) else None
        self._ping_hook = hooks if isinstance(hooks, PingHook) else None

        self._allowed_nets = tuple(
            ipaddress.ip_network(c, strict=False) for c in config.cidrs_allowed
        )
        self._events: list[Event] = []
        self._drops: Counter[str] = Counter()
        self._table = MemberTable()
        self._deadlines: Deadlines[Timer] = Deadlines()
        self._tx = Transmitter(
            config,
            name=name,
            table=self._table,
            rng=rng,
            deadlines=self._deadlines,
            keyring=keyring,
            label=bytes(label),
            compress=(
                config.enable_compression if enable_compression is None else enable_compression
            ),
            encryption_version=1 if uses_encryption_v1(config.protocol_version) else 0,
            broadcast_hook=hooks if isinstance(hooks, BroadcastHook) else None,
            now=now,
        )
        self._awareness = Awareness(config.awareness_max_multiplier)
        self._suspicions: dict[str, Suspicion] = {}
        self._seq = 0
        self._incarnation = 0
        self._probe: ProbeState | None = None
        self._relays: dict[int, Relay] = {}
        self._streams: dict[int, StreamState] = {}
        self._inbound = 0
        self._next_stream = 1
        self._joins: dict[int, JoinBatch] = {}
        self._next_join = 1
        self._left = False
        self._leave_waiting = False
        self._next_refresh = now
        self.refreshes = 0
        """How many slow refreshes we made (`Config.slow_refresh_interval`)."""
        self.incarnation_restarts = 0
        """How often our incarnation passed 0xFFFFFFFF and restarted at 1 (see `_refute`)."""
        self.stalls = 0
        """How many loop-lag reports counted as a stall."""

        meta = b""
        if self._meta_hook is not None:
            meta = bytes(self._meta_hook.node_meta(META_MAX_SIZE))
            if len(meta) > META_MAX_SIZE:
                raise ValueError(f"node meta is {len(meta)} bytes; the limit is {META_MAX_SIZE}")
        self._alive_node(self._own_alive(self._next_incarnation(), meta), now, bootstrap=True)
        # Tickers start at a random phase so simulated nodes started together spread out.
        rand = rng.random
        if config.probe_interval > 0:
            self._deadlines.set(PROBE_TICK, now + config.probe_interval * (0.5 + rand() / 2))
        if config.push_pull_interval > 0:
            self._deadlines.set(PUSH_PULL_TICK, now + config.push_pull_interval * rand())

    def take_outgoing(self) -> list[Outgoing]:
        """Effects to perform, in order."""
        return self._tx.take_outgoing()

    def take_events(self) -> list[Event]:
        """Events since the last call, in order."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """When `handle_timeout` must next be called (may be in the past: call it now)."""
        return self._deadlines.next_deadline()

    def members(self) -> list[Member]:
        """Every known member in any state, ourselves included."""
        return [rec.snapshot() for rec in self._table.order]

    def member(self, name: str) -> Member | None:
        """One member by name."""
        rec = self._table.get(name)
        return rec.snapshot() if rec is not None else None

    @property
    def local_member(self) -> Member:
        """Our own record."""
        return self._self.snapshot()

    @property
    def health_score(self) -> int:
        """Lifeguard awareness score (0 = healthy, up to awareness_max_multiplier - 1)."""
        return self._awareness.score

    @property
    def drops(self) -> Mapping[str, int]:
        """Dropped inputs by reason (read-only live view)."""
        return MappingProxyType(self._drops)

    @property
    def num_members(self) -> int:
        """Size of the member table (memberlist `estNumNodes`): all states, self included."""
        return len(self._table)

    @property
    def has_left(self) -> bool:
        """True after `leave()`."""
        return self._left

    @property
    def broadcasts_queued(self) -> int:
        """Member broadcasts waiting for retransmission (memberlist `NumQueued`)."""
        return len(self._tx.member_q)

    def join(self, seeds: Sequence[Address], now: float) -> None:
        """Push/pull (join=True) with each seed; `JoinCompleted` once all answered or failed."""
        if not seeds:
            self._events.append(JoinCompleted(joined=0, errors=()))
            return
        batch_id = self._next_join
        self._next_join += 1
        self._joins[batch_id] = JoinBatch(pending=len(seeds))
        for seed in seeds:
            self._start_push_pull(seed, now, join=True, batch=batch_id)

    def leave(self, now: float, timeout: float) -> None:
        """Broadcast our own death (a graceful leave); `LeaveCompleted` when sent or timed out.

        `timeout <= 0` waits for the broadcast without limit.
        """
        if self._left:
            self._events.append(LeaveCompleted(timed_out=False))
            return
        self._left = True
        me = self._self
        self._leave_waiting = True
        self._dead_node(Dead(incarnation=me.incarnation, node=self.name, from_=self.name), now)
        if not self._any_alive():
            self._leave_done(timed_out=False)
        elif self._leave_waiting and timeout > 0:
            self._deadlines.set(LEAVE_TIMEOUT, now + timeout)

    def preload(self, view: SharedView, now: float) -> None:
        """Start from a converged cluster's member list instead of joining (simulation).

        Every member of `view` becomes known alive at its incarnation there, without events
        or broadcasts; the records stay shared with other nodes until this node changes one.
        The next push/pull is redrawn in the interval scaled to the new size, the phase a
        node long in such a cluster has (a fresh node's first one comes within the unscaled
        interval, which would make every preloaded node sync its full table at once).
        Only on a fresh node (nothing learned yet); raises UsageError otherwise.
        """
        if len(self._table) != 1 or self._joins:
            raise UsageError("preload() needs a fresh node that has not joined or learned anyone")
        mine = view.by_name.get(self.name)
        if mine is not None and mine.address != self._advertise:
            raise UsageError(f"the view has {self.name!r} at {mine.address}, not {self._advertise}")
        self._table.adopt(view, self._self, self._rng)
        interval = self.config.push_pull_interval
        if interval > 0:
            scaled = push_pull_scale(interval, len(self._table))
            self._deadlines.set(PUSH_PULL_TICK, now + scaled * self._rng.random())

    def update_meta(self, meta: bytes, now: float) -> None:
        """Advertise new metadata (at most 512 bytes) with a higher incarnation."""
        meta = bytes(meta)
        if len(meta) > META_MAX_SIZE:
            raise ValueError(f"node meta is {len(meta)} bytes; the limit is {META_MAX_SIZE}")
        self._alive_node(self._own_alive(self._next_incarnation(), meta), now, bootstrap=True)

    def send_best_effort(self, to: Address, data: bytes, now: float) -> None:
        """A user message by UDP (memberlist `SendBestEffort`); no piggybacking."""
        payload = encode_message(UserData(bytes(data)))
        self._tx.send_raw(to, payload, self._tx.crc_for_address(to))

    def send_reliable(self, to: Address, data: bytes, now: float) -> None:
        """A user message over a stream (memberlist `SendReliable`).

        The receiver closes the stream once it has read the message; a connect
        failure, reset or `tcp_timeout` is counted in `drops` ("reliable_failed").
        """
        sid = self._new_stream_id()
        decoder = self._tx.decoder()
        self._streams[sid] = StreamState(kind=StreamKind.USER_OUT, peer=to, decoder=decoder)
        self._tx.emit(StreamOpen(sid, to))
        self._tx.emit(StreamSend(sid, self._tx.frame(UserStream(bytes(data)))))
        self._deadlines.set(StreamTimeout(sid), now + self.config.tcp_timeout)

    def broadcast(self, data: bytes, now: float, key: str | None = None) -> None:
        """Queue a user broadcast piggybacked on gossip; a `key` replaces the queued one."""
        if not data:
            raise ValueError("refusing to broadcast an empty message")
        self._tx.broadcast_user(bytes(data), now, key)
        if len(self._tx.user_q) > self.config.max_user_broadcasts:
            self._drops["user_broadcast_overflow"] += 1
            self._tx.user_q.prune(self.config.max_user_broadcasts)

    def report_loop_lag(self, lag: float, now: float) -> None:
        """Driver-measured timer lateness; see `protocol.awareness` for the rule.

        A stall (lag above `loop_lag_threshold * probe_timeout`) raises the health
        score and pushes the deadlines of the in-flight probe, of every running
        suspicion and of the streams we opened back by `lag`: time we spent frozen is
        not counted against peers (inbound streams keep their absolute deadline).
        (After a stall a driver may run due timers before it has read every datagram
        that arrived meanwhile; asyncio reads one datagram per loop iteration, for
        example.)
        """
        cfg = self.config
        if not cfg.loop_lag_health:
            return
        lag = max(0.0, lag)  # on time (or early) still counts towards paying lag debt back
        stalled = self._awareness.report_lag(
            lag,
            now,
            threshold=cfg.loop_lag_threshold * cfg.probe_timeout,
            unit=cfg.probe_timeout,
            decay_period=cfg.probe_interval,
        )
        if not stalled:
            return
        self.stalls += 1
        probe = self._probe
        # Deadlines are never moved into the past: a timer armed behind `now` would make
        # the driver report the gap as lag again.
        if probe is not None:
            probe.direct_deadline = max(probe.direct_deadline + lag, now)
            probe.deadline = max(probe.deadline + lag, now)
            if not probe.indirect:
                self._deadlines.set(PROBE_INDIRECT, probe.direct_deadline)
            self._deadlines.set(PROBE_TIMEOUT, probe.deadline)
        for name, susp in self._suspicions.items():
            susp.start += lag
            self._deadlines.set(SuspicionTimeout(name), max(susp.deadline, now))
        for sid, st in self._streams.items():
            key = StreamTimeout(sid)
            when = self._deadlines.get(key)
            # A TCP ping follows its probe; an inbound stream's deadline is absolute, as
            # a hostile stream can cause the very lag that would otherwise extend it.
            if (
                when is not None
                and st.kind is not StreamKind.TCP_PING
                and st.kind is not StreamKind.INBOUND
            ):
                self._deadlines.set(key, max(when + lag, now))
        if probe is not None and probe.tcp_stream is not None:
            self._deadlines.set(StreamTimeout(probe.tcp_stream), probe.deadline)

    def handle_timeout(self, now: float) -> None:
        """Run every timer due at `now`, earliest first."""
        deadlines = self._deadlines
        while True:
            timer = deadlines.pop_due(now)
            if timer is None:
                return
            self._fire(timer, now)

    def _fire(self, timer: Timer, now: float) -> None:
        match timer:
            case ProbeTick():
                self._probe_tick(now)
            case ProbeIndirect():
                self._probe_direct_timeout(now)
            case ProbeTimeout():
                self._probe_end(now)
            case GossipTick():
                self._tx.gossip_tick(now)
            case RelayTimeout(seq):
                self._relay_timeout(seq)
            case SuspicionTimeout(name):
                self._suspicion_expired(name, now)
            case PushPullTick():
                self._push_pull_tick(now)
            case StreamTimeout(stream_id):
                self._stream_timeout(stream_id, now)
            case LeaveTimeout():
                if self._leave_waiting:
                    self._leave_done(timed_out=True)
            case _:
                assert_never(timer)

    def receive_datagram(self, data: bytes, sender: Address, now: float) -> None:
        """One UDP payload from `sender`."""
        errors: list[DecodeError] = []
        try:
            messages = decode_packet(
                data,
                keyring=self._tx.keyring,
                label=self._tx.label,
                verify_incoming=self.config.gossip_verify_incoming,
                errors=errors,
            )
        except DecodeError as exc:
            self._drops[exc.reason] += 1
            return
        for err in errors:
            self._drops[err.reason] += 1
        # Most messages are gossiped alives: hand those straight to the alive rule when
        # `_handle_message` would neither filter nor rewrite them.
        direct = not self._allowed_nets and trusts_message_ports(self.config.protocol_version)
        alive_node = self._alive_node
        for msg in messages:
            if direct and type(msg) is Alive and msg.port != 0:
                alive_node(msg, now)
            else:
                self._handle_message(msg, sender, now)
        if messages:
            self._maybe_refresh(now)  # we still hear our peers, however late: refute ahead

    def _handle_message(self, msg: Message, sender: Address, now: float) -> None:
        if type(msg) is Alive:  # most messages are gossiped alives: test that first
            if self._allowed_nets and not self._ip_allowed(sender[0]):
                self._drops["cidr_blocked"] += 1
                return
            if not trusts_message_ports(self.config.protocol_version) or msg.port == 0:
                msg = dataclasses.replace(msg, port=self._advertise[1])
            self._alive_node(msg, now)
        elif isinstance(msg, Ping):
            self._handle_ping(msg, sender)
        elif isinstance(msg, AckResp):
            self._handle_ack(msg, now)
        elif isinstance(msg, Suspect):
            self._suspect_node(msg, now)
        elif isinstance(msg, Dead):
            self._dead_node(msg, now)
        elif isinstance(msg, IndirectPingReq):
            self._handle_indirect_ping(msg, sender, now)
        elif isinstance(msg, NackResp):
            self._handle_nack(msg)
        elif isinstance(msg, UserData):
            self._deliver_user(msg.data)
        else:
            self._drops["unexpected_message"] += 1
