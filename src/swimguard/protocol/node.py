"""`Node`: the sans-IO SWIM + Lifeguard state machine (memberlist 0.2.2 semantics).

Theory of operation. Every input (a datagram, stream bytes, a timer, an API
call) takes `now`, updates the member table and pushes effects onto two lists
the driver drains: `take_outgoing()` (datagrams and stream operations, already
encoded) and `take_events()`. `next_deadline()` says when `handle_timeout(now)`
must run next; all timers live in one `Deadlines` table keyed by typed timers
(`protocol.timers`), so a cancelled timer can never fire.

`Node` routes between parts that own their state (like foca's `Foca` over its
probe, member table and broadcasts), each in its own module, each using only the
parts below it: `Transmitter` (`transmit`: outgoing effects, broadcast queues,
gossip rounds) <- `Membership` (`membership`: the member table, suspicions, our
incarnation, leaving) <- `Streams` (`streams`: push/pull, reliable messages, open
streams) <- `Prober` (`probing`: probes, relays, sequence numbers). Where we
differ from memberlist is listed in the `swimguard.protocol` package docstring.
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
from swimguard.protocol.addresses import bytes_to_host, host_to_bytes, ip_allowed
from swimguard.protocol.awareness import Awareness, check_app_score
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.events import Event, deliver_user_message
from swimguard.protocol.explain import Explanation, explain
from swimguard.protocol.fencing import SelfFencing
from swimguard.protocol.history import History
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
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.membership import Membership
from swimguard.protocol.names import check_local_name
from swimguard.protocol.outgoing import Address, Outgoing
from swimguard.protocol.probing import Prober
from swimguard.protocol.scaling import push_pull_scale
from swimguard.protocol.stats import ProtocolStats
from swimguard.protocol.streams import Streams
from swimguard.protocol.table import MemberTable, SharedView
from swimguard.protocol.timers import (
    PROBE_TICK,
    PUSH_PULL_TICK,
    GossipTick,
    LeaveTimeout,
    ProbeIndirect,
    ProbeTick,
    ProbeTimeout,
    PushPullTick,
    RelayTimeout,
    SelfFence,
    StreamTimeout,
    SuspicionTimeout,
    Timer,
)
from swimguard.protocol.transmit import Transmitter
from swimguard.protocol.versions import trusts_message_ports, uses_encryption_v1
from swimguard.wire.encryption import Keyring
from swimguard.wire.errors import DecodeError
from swimguard.wire.messages import AckResp, Alive, Dead, IndirectPingReq, NackResp, Ping, Suspect
from swimguard.wire.packet import UserData, decode_packet, encode_message

__all__ = ["Node"]


class Node:
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
        self._advertise: Address = (bytes_to_host(addr_bytes) or host, port)
        self._message_hook = hooks if isinstance(hooks, MessageHook) else None
        self._allowed_nets = tuple(
            ipaddress.ip_network(c, strict=False) for c in config.cidrs_allowed
        )
        self._events: list[Event] = []
        self._drops: Counter[str] = Counter()
        self._table = MemberTable()
        self._deadlines: Deadlines[Timer] = Deadlines()
        self._history = History(config.explain_members)
        self._awareness = Awareness(config.awareness_max_multiplier, self._history)
        self.stalls = 0
        """How many loop-lag reports counted as a stall."""
        self.stats = ProtocolStats()
        self._fencing = SelfFencing(
            config.self_fence_after,
            awareness=self._awareness,
            deadlines=self._deadlines,
            events=self._events,
        )
        """Protocol counters for metrics (the parts below bump them)."""
        self._tx = Transmitter(
            config,
            stats=self.stats,
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
        self._membership = Membership(
            config,
            stats=self.stats,
            name=name,
            addr_bytes=addr_bytes,
            port=port,
            rng=rng,
            table=self._table,
            deadlines=self._deadlines,
            tx=self._tx,
            awareness=self._awareness,
            history=self._history,
            events=self._events,
            drops=self._drops,
            allowed_nets=self._allowed_nets,
            alive_hook=hooks if isinstance(hooks, AliveHook) else None,
            conflict_hook=hooks if isinstance(hooks, ConflictHook) else None,
            now=now,
        )
        self._streams = Streams(
            config,
            stats=self.stats,
            name=name,
            rng=rng,
            table=self._table,
            deadlines=self._deadlines,
            tx=self._tx,
            membership=self._membership,
            events=self._events,
            drops=self._drops,
            state_hook=hooks if isinstance(hooks, StateHook) else None,
            merge_hook=hooks if isinstance(hooks, MergeHook) else None,
            message_hook=self._message_hook,
        )
        self._prober = Prober(
            config,
            stats=self.stats,
            name=name,
            addr_bytes=addr_bytes,
            port=port,
            rng=rng,
            table=self._table,
            deadlines=self._deadlines,
            tx=self._tx,
            membership=self._membership,
            streams=self._streams,
            awareness=self._awareness,
            history=self._history,
            events=self._events,
            drops=self._drops,
            ping_hook=hooks if isinstance(hooks, PingHook) else None,
        )

        meta = b""
        if isinstance(hooks, MetaHook):
            meta = bytes(hooks.node_meta(META_MAX_SIZE))
            if len(meta) > META_MAX_SIZE:
                raise ValueError(f"node meta is {len(meta)} bytes; the limit is {META_MAX_SIZE}")
        members = self._membership
        members.alive_node(
            members.own_alive(members.next_incarnation(), meta), now=now, bootstrap=True
        )
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
        events = self._events.copy()  # the parts hold this very list: empty it in place
        self._events.clear()
        return events

    def next_deadline(self) -> float | None:
        """When `handle_timeout` must next be called (may be in the past: call it now)."""
        return self._deadlines.next_deadline()

    def explain(self, name: str, *, now: float) -> Explanation | None:
        """Why member `name` is in its state (`protocol.explain`); None if unknown."""
        rec = self._table.get(name)
        if rec is None:
            return None
        awareness = self._awareness
        return explain(
            rec,
            now=now,
            config=self.config,
            history=self._history,
            running=self._membership.suspicions.get(name),
            is_self=name == self.name,
            health_score=awareness.score,
            at_max_since=awareness.at_max_since,
        )

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
        return self._membership.self_record.snapshot()

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
        return self._membership.has_left

    @property
    def broadcasts_queued(self) -> int:
        """Member broadcasts waiting for retransmission (memberlist `NumQueued`)."""
        return len(self._tx.member_q)

    def count_by_state(self) -> Counter[MemberState]:
        """How many members (ourselves included) are in each state; no snapshots made."""
        return Counter(rec.state for rec in self._table.order)

    @property
    def user_broadcasts_queued(self) -> int:
        """User broadcasts (Serf intents, events, queries) waiting to be gossiped."""
        return len(self._tx.user_q)

    def user_broadcasts_by_first_byte(self) -> Counter[int]:
        """Queued user broadcasts by the first byte of their data (a Serf message type,
        when the Serf layer queued them); one pass over the bounded queue."""
        # Queued as an encoded user message: its type byte, then the application's bytes.
        return Counter(msg[1] for msg in self._tx.user_q.messages() if len(msg) > 1)

    def report_health(self, score: int, *, now: float) -> None:
        """The application's own health: `score` > 0 raises the Lifeguard health score
        like that many missed nacks (then decays as probes succeed); 0 withdraws what is
        left of earlier reports. See `protocol.awareness` for the rule; `score` must be an
        int in [0, awareness_max_multiplier - 1] (ValueError otherwise)."""
        check_app_score(score, self.config.awareness_max_multiplier)
        self.stats.health_reports += 1
        self._awareness.report_app(score, now=now)
        self._fencing.watch(now=now)

    @property
    def health_from_app(self) -> int:
        """Points of `health_score` still owed to `report_health`."""
        return self._awareness.app_points

    @property
    def refreshes(self) -> int:
        """How many slow refreshes we made (`Config.slow_refresh_interval`)."""
        return self._membership.refreshes

    @property
    def incarnation_restarts(self) -> int:
        """How often our incarnation passed 0xFFFFFFFF and restarted at 1."""
        return self._membership.incarnation_restarts

    def join(self, seeds: Sequence[Address], *, now: float) -> None:
        """Push/pull (join=True) with each seed; `JoinCompleted` once all answered or failed."""
        self._streams.join(seeds, now=now)

    def leave(self, timeout: float, *, now: float) -> None:
        """Broadcast our own death (a graceful leave); `LeaveCompleted` when sent or timed out.

        `timeout <= 0` waits for the broadcast without limit.
        """
        self._membership.leave(timeout, now=now)

    def preload(self, view: SharedView, *, now: float) -> None:
        """Start from a converged cluster's member list instead of joining (simulation).

        Every member of `view` becomes known alive at its incarnation there, without events
        or broadcasts; the records stay shared with other nodes until this node changes one.
        The next push/pull is redrawn in the interval scaled to the new size, the phase a
        node long in such a cluster has (a fresh node's first one comes within the unscaled
        interval, which would make every preloaded node sync its full table at once).
        Only on a fresh node (nothing learned yet); raises UsageError otherwise.
        """
        if len(self._table) != 1 or self._streams.joining:
            raise UsageError("preload() needs a fresh node that has not joined or learned anyone")
        mine = view.by_name.get(self.name)
        if mine is not None and mine.address != self._advertise:
            raise UsageError(f"the view has {self.name!r} at {mine.address}, not {self._advertise}")
        self._membership.adopt(view)
        interval = self.config.push_pull_interval
        if interval > 0:
            scaled = push_pull_scale(interval, len(self._table))
            self._deadlines.set(PUSH_PULL_TICK, now + scaled * self._rng.random())

    def update_meta(self, meta: bytes, *, now: float) -> None:
        """Advertise new metadata (at most 512 bytes) with a higher incarnation."""
        meta = bytes(meta)
        if len(meta) > META_MAX_SIZE:
            raise ValueError(f"node meta is {len(meta)} bytes; the limit is {META_MAX_SIZE}")
        members = self._membership
        members.alive_node(
            members.own_alive(members.next_incarnation(), meta), now=now, bootstrap=True
        )

    def send_best_effort(self, to: Address, data: bytes, *, now: float) -> None:
        """A user message by UDP (memberlist `SendBestEffort`); no piggybacking."""
        payload = encode_message(UserData(bytes(data)))
        self._tx.send_raw(to, payload, self._tx.crc_for_address(to))

    def send_reliable(self, to: Address, data: bytes, *, now: float) -> int:
        """A user message over a stream (memberlist `SendReliable`); returns its call id.

        The receiver closes the stream once it has read the message: `ReliableCompleted`
        (with that id) then reports success; a connect failure, reset or `tcp_timeout`
        reports its error there and is counted in `drops` ("reliable_failed"). ValueError
        above `Config.max_stream_bytes`.
        """
        return self._streams.send_reliable(to, bytes(data), now=now)

    def broadcast(self, data: bytes, key: str | None = None, *, now: float) -> None:
        """Queue a user broadcast piggybacked on gossip; a `key` replaces the queued one."""
        if not data:
            raise ValueError("refusing to broadcast an empty message")
        self._tx.broadcast_user(bytes(data), key, now=now)
        if len(self._tx.user_q) > self.config.max_user_broadcasts:
            self._drops["user_broadcast_overflow"] += 1
            self._tx.user_q.prune(self.config.max_user_broadcasts)

    def stream_accepted(self, peer: Address, *, now: float) -> int:
        """An inbound stream from `peer` was accepted; returns the id for later calls."""
        return self._streams.stream_accepted(peer, now=now)

    def stream_data(
        self, stream_id: int, data: bytes, *, now: float, max_work: int | None = None
    ) -> bool:
        """Bytes received on stream `stream_id`; True if some are still to be parsed.

        With `max_work`, at most that many bytes are parsed in this call (a driver's
        bound on the time one call takes; 0 only buffers `data`); while this returns
        True the driver calls again with `data=b""` on a later turn, and should stop
        reading the stream. Buffered bytes count against the inbound memory budget.
        """
        return self._streams.stream_data(stream_id, data, now=now, max_work=max_work)

    def stream_closed(self, stream_id: int, error: str | None = None, *, now: float) -> None:
        """The peer closed the stream, it broke, or the connection could not be made."""
        self._streams.stream_closed(stream_id, error, now=now)

    def report_loop_lag(self, lag: float, *, now: float) -> None:
        """Driver-measured timer lateness; see `protocol.awareness` for the rule.

        A stall (lag above `loop_lag_threshold * probe_timeout`) raises the health
        score and has each part push its own deadlines back by `lag` (the probe in
        flight, every running suspicion, the streams we opened): time we spent frozen
        is not counted against peers (inbound streams keep their absolute deadline).
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
            now=now,
            threshold=cfg.loop_lag_threshold * cfg.probe_timeout,
            unit=cfg.probe_timeout,
            decay_period=cfg.probe_interval,
        )
        self._fencing.watch(now=now)
        if not stalled:
            return
        self.stalls += 1
        self._prober.postpone(lag, now=now)
        self._membership.postpone(lag, now=now)
        self._streams.postpone(lag, now=now)

    def handle_timeout(self, *, now: float) -> None:
        """Run every timer due at `now`, earliest first."""
        deadlines = self._deadlines
        while True:
            timer = deadlines.pop_due(now=now)
            if timer is None:
                break
            self._fire(timer, now=now)
        self._fencing.watch(now=now)  # probes ended: the score may have moved

    def _fire(self, timer: Timer, *, now: float) -> None:
        match timer:
            case ProbeTick():
                self._prober.probe_tick(now=now)
            case ProbeIndirect():
                self._prober.probe_indirect(now=now)
            case ProbeTimeout():
                self._prober.probe_timeout(now=now)
            case GossipTick():
                self._tx.gossip_tick(now=now)
            case RelayTimeout(seq):
                self._prober.relay_timeout(seq)
            case SuspicionTimeout(name):
                self._membership.suspicion_expired(name, now=now)
            case PushPullTick():
                self._streams.push_pull_tick(now=now)
            case StreamTimeout(stream_id):
                self._streams.stream_timeout(stream_id, now=now)
            case LeaveTimeout():
                self._membership.leave_timeout()
            case SelfFence():
                if not self._membership.has_left:  # gone already: nothing to fence
                    self._fencing.fire(now=now)
            case _:
                assert_never(timer)

    def receive_datagram(self, data: bytes, sender: Address, *, now: float) -> None:
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
        # Each message goes straight from this loop to its rule (no dispatch helper), so a
        # datagram crosses one frame fewer on its way in (docs/architecture.md).
        allowed_nets = self._allowed_nets
        trusted_ports = trusts_message_ports(self.config.protocol_version)
        membership, prober = self._membership, self._prober
        alive_node = membership.alive_node
        for msg in messages:
            if type(msg) is Alive:  # most messages are gossiped alives: test that first
                if allowed_nets and not ip_allowed(allowed_nets, sender[0]):
                    self._drops["cidr_blocked"] += 1
                    continue
                if not trusted_ports or msg.port == 0:
                    msg = dataclasses.replace(msg, port=self._advertise[1])
                alive_node(msg, now=now)
            elif isinstance(msg, Ping):
                prober.handle_ping(msg, sender)
            elif isinstance(msg, AckResp):
                prober.handle_ack(msg, now=now)
            elif isinstance(msg, Suspect):
                membership.suspect_node(msg, now=now)
            elif isinstance(msg, Dead):
                membership.dead_node(msg, now=now)
            elif isinstance(msg, IndirectPingReq):
                prober.handle_indirect_ping(msg, sender, now=now)
            elif isinstance(msg, NackResp):
                prober.handle_nack(msg)
            elif isinstance(msg, UserData):
                deliver_user_message(self._events, self._message_hook, msg.data, sender)
            else:
                self._drops["unexpected_message"] += 1
        if messages:
            # We still hear our peers, however late: refute ahead.
            membership.maybe_refresh(now=now)
            self._fencing.watch(now=now)  # a refutation raises the score
