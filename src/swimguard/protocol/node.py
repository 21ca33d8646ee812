"""`Node`: the sans-IO SWIM + Lifeguard state machine (memberlist 0.2.2 semantics).

Theory of operation. Every input (a datagram, stream bytes, a timer, an API
call) takes `now`, updates the member table and pushes effects onto two lists
the driver drains: `take_outgoing()` (datagrams and stream operations, already
encoded) and `take_events()`. `next_deadline()` says when `handle_timeout(now)`
must run next; all timers live in one `Deadlines` table keyed by purpose, so a
cancelled timer can never fire.

The member-state rules (`_alive_node`, `_suspect_node`, `_dead_node`,
`_merge_state`) follow memberlist's `state.go` rule for rule; probing follows
`probeNode` (direct ping, indirect pings with nacks, TCP fallback, awareness
deltas), gossip follows `gossip()`, push/pull follows `pushPullNode` and
`handleConn`. Deviations are listed in the module `swimguard.protocol`'s docs.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from swimguard.config import META_MAX_SIZE, Config
from swimguard.errors import UsageError
from swimguard.protocol.addresses import bytes_to_host, host_to_bytes
from swimguard.protocol.awareness import Awareness
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.dissemination import BroadcastQueue
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
from swimguard.protocol.outgoing import (
    Address,
    Datagram,
    Outgoing,
    StreamClose,
    StreamOpen,
    StreamSend,
)
from swimguard.protocol.scaling import push_pull_scale, suspicion_timeout
from swimguard.protocol.suspicion import Suspicion
from swimguard.protocol.table import MemberRecord, MemberTable
from swimguard.protocol.versions import verify_protocol, vsn_is_sane
from swimguard.wire.encryption import Keyring
from swimguard.wire.errors import DecodeError
from swimguard.wire.messages import (
    AckResp,
    Alive,
    Dead,
    ErrResp,
    IndirectPingReq,
    NackResp,
    Ping,
    PushNodeState,
    PushPullHeader,
    Suspect,
)
from swimguard.wire.packet import (
    Message,
    UserData,
    decode_packet,
    encode_message,
    encode_packet,
    make_compound,
)
from swimguard.wire.stream import (
    PushPull,
    StreamDecoder,
    StreamMessage,
    UserStream,
    encode_stream_message,
    frame_stream,
)

__all__ = ["Node"]

COMPOUND_HEADER_OVERHEAD: Final = 2
COMPOUND_OVERHEAD: Final = 2
USER_MSG_OVERHEAD: Final = 1
MAX_COMPOUND_PARTS: Final = 255
# Go's encryptOverhead: version byte + nonce + tag (+ max padding for version 0).
ENCRYPT_OVERHEAD: Final = {0: 1 + 12 + 16 + 16, 1: 1 + 12 + 16}
U32: Final = 0xFFFF_FFFF

_ALIVE, _SUSPECT, _DEAD, _LEFT = (
    MemberState.ALIVE,
    MemberState.SUSPECT,
    MemberState.DEAD,
    MemberState.LEFT,
)

# Deadline keys.
_PROBE: Final = ("probe",)
_PROBE_DIRECT: Final = ("probe_direct",)
_PROBE_END: Final = ("probe_end",)
_GOSSIP: Final = ("gossip",)
_PUSH_PULL: Final = ("push_pull",)
_LEAVE: Final = ("leave",)


@dataclasses.dataclass(slots=True)
class _Probe:
    """One probe cycle (memberlist `probeNode`)."""

    seq: int
    target: str
    incarnation: int
    start: float
    direct_deadline: float
    deadline: float
    indirect: bool = False
    expected_nacks: int = 0
    nacks: int = 0
    tcp_stream: int | None = None
    tcp_ok: bool = False


@dataclasses.dataclass(slots=True)
class _Relay:
    """An indirect ping we run for `origin` (memberlist `handleIndirectPing`)."""

    origin: Address
    origin_seq: int
    nack: bool


@dataclasses.dataclass(slots=True)
class _JoinBatch:
    pending: int
    joined: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class _Stream:
    """An open stream the core is waiting on."""

    kind: str  # "in", "push_pull", "tcp_ping"
    peer: Address
    decoder: StreamDecoder
    join: bool = False
    batch: int | None = None
    probe_seq: int = 0


class Node:
    """One cluster member. See the module docstring and docs/architecture.md."""

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
        if not name:
            raise UsageError("node name must not be empty")
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
        self._keyring = keyring
        self._out_keyring = keyring if config.gossip_verify_outgoing else None
        self._label = bytes(label)
        self._compress = (
            config.enable_compression if enable_compression is None else enable_compression
        )
        self._enc_version = 0 if config.protocol_version < 2 else 1
        self._budget = config.udp_buffer_size - (
            ENCRYPT_OVERHEAD[self._enc_version] if self._out_keyring is not None else 0
        )

        self._meta_hook = hooks if isinstance(hooks, MetaHook) else None
        self._message_hook = hooks if isinstance(hooks, MessageHook) else None
        self._broadcast_hook = hooks if isinstance(hooks, BroadcastHook) else None
        self._state_hook = hooks if isinstance(hooks, StateHook) else None
        self._conflict_hook = hooks if isinstance(hooks, ConflictHook) else None
        self._merge_hook = hooks if isinstance(hooks, MergeHook) else None
        self._alive_hook = hooks if isinstance(hooks, AliveHook) else None
        self._ping_hook = hooks if isinstance(hooks, PingHook) else None

        self._out: list[Outgoing] = []
        self._events: list[Event] = []
        self._drops: Counter[str] = Counter()
        self._table = MemberTable()
        self._deadlines = Deadlines()
        self._awareness = Awareness(config.awareness_max_multiplier)
        self._suspicions: dict[str, Suspicion] = {}
        self._member_q = BroadcastQueue(config.retransmit_mult)
        self._user_q = BroadcastQueue(config.retransmit_mult)
        self._seq = 0
        self._incarnation = 0
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._streams: dict[int, _Stream] = {}
        self._inbound = 0
        self._next_stream = 1
        self._joins: dict[int, _JoinBatch] = {}
        self._next_join = 1
        self._left = False
        self._leave_waiting = False
        self.stalls = 0
        """How many loop-lag reports counted as a stall."""

        meta = b""
        if self._meta_hook is not None:
            meta = bytes(self._meta_hook.node_meta(META_MAX_SIZE))
            if len(meta) > META_MAX_SIZE:
                raise ValueError(f"node meta is {len(meta)} bytes; the limit is {META_MAX_SIZE}")
        self._alive_node(
            Alive(
                incarnation=self._next_incarnation(),
                node=name,
                addr=addr_bytes,
                port=port,
                meta=meta or None,
                vsn=config.vsn,
            ),
            now,
            bootstrap=True,
        )
        # Tickers start at a random phase so simulated nodes started together spread out.
        rand = rng.random
        if config.probe_interval > 0:
            self._deadlines.set(_PROBE, now + config.probe_interval * (0.5 + rand() / 2))
        if config.gossip_interval > 0 and config.gossip_nodes > 0:
            self._deadlines.set(_GOSSIP, now + config.gossip_interval * (0.5 + rand() / 2))
        if config.push_pull_interval > 0:
            self._deadlines.set(_PUSH_PULL, now + config.push_pull_interval * rand())

    # ------------------------------------------------------------------ outputs

    def take_outgoing(self) -> list[Outgoing]:
        """Effects to perform, in order."""
        out, self._out = self._out, []
        return out

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
        return len(self._member_q)

    @property
    def _self(self) -> MemberRecord:
        rec = self._table.get(self.name)
        assert rec is not None
        return rec

    # ------------------------------------------------------------------ API inputs

    def join(self, seeds: Sequence[Address], now: float) -> None:
        """Push/pull (join=True) with each seed; `JoinCompleted` once all answered or failed."""
        if not seeds:
            self._events.append(JoinCompleted(joined=0, errors=()))
            return
        batch_id = self._next_join
        self._next_join += 1
        self._joins[batch_id] = _JoinBatch(pending=len(seeds))
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
        self._dead_node(
            Dead(incarnation=me.incarnation, node=self.name, from_=self.name), now
        )
        if not self._any_alive():
            self._leave_done(timed_out=False)
        elif self._leave_waiting and timeout > 0:
            self._deadlines.set(_LEAVE, now + timeout)

    def update_meta(self, meta: bytes, now: float) -> None:
        """Advertise new metadata (at most 512 bytes) with a higher incarnation."""
        meta = bytes(meta)
        if len(meta) > META_MAX_SIZE:
            raise ValueError(f"node meta is {len(meta)} bytes; the limit is {META_MAX_SIZE}")
        me = self._self
        self._alive_node(
            Alive(
                incarnation=self._next_incarnation(),
                node=self.name,
                addr=me.addr_bytes,
                port=me.port,
                meta=meta or None,
                vsn=self.config.vsn,
            ),
            now,
            bootstrap=True,
        )

    def send_best_effort(self, to: Address, data: bytes, now: float) -> None:
        """A user message by UDP (memberlist `SendBestEffort`); no piggybacking."""
        payload = encode_message(UserData(bytes(data)))
        self._send_raw(to, payload, self._crc_for_address(to))

    def send_reliable(self, to: Address, data: bytes, now: float) -> None:
        """A user message over a stream (memberlist `SendReliable`); no reply, no report."""
        sid = self._new_stream_id()
        self._out.append(StreamOpen(sid, to))
        self._out.append(StreamSend(sid, self._frame(UserStream(bytes(data)))))
        self._out.append(StreamClose(sid))

    def broadcast(self, data: bytes, now: float, key: str | None = None) -> None:
        """Queue a user broadcast piggybacked on gossip; a `key` replaces the queued one."""
        if not data:
            raise ValueError("refusing to broadcast an empty message")
        msg = encode_message(UserData(bytes(data)))
        if len(msg) + COMPOUND_OVERHEAD + COMPOUND_HEADER_OVERHEAD > self._budget:
            raise ValueError(f"broadcast of {len(data)} bytes cannot fit in one packet")
        self._user_q.queue(msg, name=key)

    def report_loop_lag(self, lag: float, now: float) -> None:
        """Driver-measured timer lateness; see `protocol.awareness` for the rule.

        A stall (lag above `loop_lag_threshold * probe_timeout`) raises the health
        score and pushes the deadlines of the in-flight probe and of every running
        suspicion back by `lag`: time we spent frozen is not counted against peers.
        """
        cfg = self.config
        if not cfg.loop_lag_health or not lag > 0:
            return
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
        if probe is not None:
            probe.direct_deadline += lag
            probe.deadline += lag
            if not probe.indirect:
                self._deadlines.set(_PROBE_DIRECT, probe.direct_deadline)
            self._deadlines.set(_PROBE_END, probe.deadline)
        for name, susp in self._suspicions.items():
            susp.start += lag
            self._deadlines.set(("suspect", name), susp.deadline)

    # ------------------------------------------------------------------ timers

    def handle_timeout(self, now: float) -> None:
        """Run every timer due at `now`, earliest first."""
        deadlines = self._deadlines
        while True:
            key = deadlines.pop_due(now)
            if key is None:
                return
            self._fire(key, now)

    def _fire(self, key: Hashable, now: float) -> None:
        assert isinstance(key, tuple)
        kind = key[0]
        if kind == "probe":
            self._probe_tick(now)
        elif kind == "probe_direct":
            self._probe_direct_timeout(now)
        elif kind == "probe_end":
            self._probe_end(now)
        elif kind == "gossip":
            self._gossip_tick(now)
        elif kind == "relay":
            self._relay_timeout(key[1])
        elif kind == "suspect":
            self._suspicion_expired(key[1], now)
        elif kind == "push_pull":
            self._push_pull_tick(now)
        elif kind == "stream":
            self._stream_timeout(key[1], now)
        elif kind == "leave" and self._leave_waiting:
            self._leave_done(timed_out=True)

    # ------------------------------------------------------------------ probing

    def _probe_interval(self) -> float:
        cfg = self.config
        if cfg.lha_probe or cfg.loop_lag_health:
            return self._awareness.scale_timeout(cfg.probe_interval)
        return cfg.probe_interval

    def _probe_tick(self, now: float) -> None:
        if self._probe is not None:
            return  # the running probe schedules the next tick when it ends
        target = self._next_probe_target(now)
        if target is None:
            self._deadlines.set(_PROBE, now + self.config.probe_interval)
            return
        self._start_probe(target, now)

    def _next_probe_target(self, now: float) -> MemberRecord | None:
        table = self._table
        checks = 0
        while checks < len(table.order):
            if table.probe_index >= len(table.order):
                self._reset_nodes(now)
                table.probe_index = 0
                checks += 1
                continue
            rec = table.order[table.probe_index]
            table.probe_index += 1
            if rec.name == self.name or rec.dead_or_left:
                checks += 1
                continue
            return rec
        return None

    def _reset_nodes(self, now: float) -> None:
        dropped = self._table.reset(
            now, self._rng, self.config.gossip_to_the_dead_time, self.config.reap_left_nodes
        )
        for rec in dropped:
            self._suspicions.pop(rec.name, None)

    def _start_probe(self, rec: MemberRecord, now: float) -> None:
        cfg = self.config
        seq = self._next_seq()
        interval = self._probe_interval()
        probe = _Probe(
            seq=seq,
            target=rec.name,
            incarnation=rec.incarnation,
            start=now,
            direct_deadline=now + cfg.probe_timeout,
            deadline=now + interval,
        )
        self._probe = probe
        self._deadlines.cancel(_PROBE)
        ping = Ping(
            seq_no=seq,
            node=rec.name,
            source_addr=self._addr_bytes,
            source_node=self.name,
            source_port=self._advertise[1],
        )
        if rec.state is _ALIVE or not cfg.buddy_system:
            self._send_msg(rec.address, encode_message(ping))
        else:
            # Buddy system: the suspect rides with the ping so the target can refute at once.
            suspect = Suspect(incarnation=rec.incarnation, node=rec.name, from_=self.name)
            payload = make_compound([encode_message(ping), encode_message(suspect)])
            self._send_raw(rec.address, payload, rec.pmax >= 5)
        self._deadlines.set(_PROBE_DIRECT, probe.direct_deadline)
        self._deadlines.set(_PROBE_END, probe.deadline)

    def _probe_direct_timeout(self, now: float) -> None:
        probe = self._probe
        if probe is None or probe.indirect:
            return
        probe.indirect = True
        cfg = self.config
        target = self._table.get(probe.target)
        if target is None:
            return
        me = self.name
        peers = self._table.k_random(
            cfg.indirect_checks,
            self._rng,
            lambda r: r.name == me or r.name == probe.target or r.state is not _ALIVE,
        )
        for peer in peers:
            nack = peer.pmax >= 4
            if nack:
                probe.expected_nacks += 1
            req = IndirectPingReq(
                seq_no=probe.seq,
                target=target.addr_bytes,
                port=target.port,
                node=target.name,
                nack=nack,
                source_addr=self._addr_bytes,
                source_node=me,
                source_port=self._advertise[1],
            )
            self._send_msg(peer.address, encode_message(req))
        if not cfg.disable_tcp_pings and target.pmax >= 3:
            sid = self._new_stream_id()
            self._streams[sid] = _Stream(
                kind="tcp_ping", peer=target.address, decoder=self._decoder(), probe_seq=probe.seq
            )
            probe.tcp_stream = sid
            ping = Ping(
                seq_no=probe.seq,
                node=target.name,
                source_addr=self._addr_bytes,
                source_node=me,
                source_port=self._advertise[1],
            )
            self._out.append(StreamOpen(sid, target.address))
            self._out.append(StreamSend(sid, self._frame(ping)))
            self._deadlines.set(("stream", sid), max(probe.deadline, now))

    def _probe_acked(self, probe: _Probe, payload: bytes | None, now: float) -> None:
        if not probe.indirect:
            rec = self._table.get(probe.target)
            if rec is not None:
                member = rec.snapshot()
                rtt = now - probe.start
                data = payload or b""
                self._events.append(PingCompleted(member=member, rtt=rtt, payload=data))
                if self._ping_hook is not None:
                    self._ping_hook.notify_ping_complete(member, rtt, data)
        self._finish_probe(probe, now, success=True)

    def _probe_end(self, now: float) -> None:
        probe = self._probe
        if probe is None:
            return
        self._finish_probe(probe, now, success=probe.tcp_ok)

    def _finish_probe(self, probe: _Probe, now: float, *, success: bool) -> None:
        cfg = self.config
        self._probe = None
        self._deadlines.cancel(_PROBE_DIRECT)
        self._deadlines.cancel(_PROBE_END)
        if probe.tcp_stream is not None and probe.tcp_stream in self._streams:
            self._close_stream(probe.tcp_stream)
        self._deadlines.set(_PROBE, max(probe.start + cfg.probe_interval, now))
        if success:
            if cfg.lha_probe:
                self._awareness.apply_delta(-1)
            return
        if cfg.lha_probe:
            if probe.expected_nacks > 0:
                self._awareness.apply_delta(max(0, probe.expected_nacks - probe.nacks))
            else:
                self._awareness.apply_delta(1)
        self._suspect_node(
            Suspect(incarnation=probe.incarnation, node=probe.target, from_=self.name), now
        )

    # ------------------------------------------------------------------ gossip

    def _gossip_tick(self, now: float) -> None:
        cfg = self.config
        self._deadlines.set(_GOSSIP, now + cfg.gossip_interval)
        if not self._member_q and not self._user_q and self._broadcast_hook is None:
            return  # nothing to say: skip choosing peers
        me = self.name
        dead_time = cfg.gossip_to_the_dead_time

        def exclude(r: MemberRecord) -> bool:
            if r.name == me:
                return True
            state = r.state
            if state is _ALIVE or state is _SUSPECT:
                return False
            if state is _DEAD:
                return now - r.state_change > dead_time
            return True

        peers = self._table.k_random(cfg.gossip_nodes, self._rng, exclude)
        limit = self._budget - COMPOUND_HEADER_OVERHEAD
        for peer in peers:
            msgs = self._get_broadcasts(COMPOUND_OVERHEAD, limit, MAX_COMPOUND_PARTS)
            if not msgs:
                return
            payload = msgs[0] if len(msgs) == 1 else make_compound(msgs)
            self._send_raw(peer.address, payload, peer.pmax >= 5)

    def _get_broadcasts(self, overhead: int, limit: int, max_count: int) -> list[bytes]:
        n = len(self._table)
        msgs = self._member_q.get_broadcasts(overhead, limit, n, max_count)
        used = sum(len(m) for m in msgs) + overhead * len(msgs)
        avail = limit - used
        if avail <= overhead + USER_MSG_OVERHEAD or len(msgs) >= max_count:
            return msgs
        if len(self._user_q):
            user = self._user_q.get_broadcasts(overhead, avail, n, max_count - len(msgs))
            msgs.extend(user)
            avail -= sum(len(m) for m in user) + overhead * len(user)
        hook = self._broadcast_hook
        if hook is not None and avail > overhead + USER_MSG_OVERHEAD and len(msgs) < max_count:
            for data in hook.get_broadcasts(overhead + USER_MSG_OVERHEAD, avail):
                if len(msgs) >= max_count or not data:
                    break
                msgs.append(encode_message(UserData(bytes(data))))
        return msgs

    def _broadcast_member(
        self, name: str, msg: Message, on_finished: Callable[[], None] | None = None
    ) -> None:
        self._member_q.queue(encode_message(msg), name=name, on_finished=on_finished)

    # ------------------------------------------------------------------ sending

    def _send_msg(self, to: Address, msg: bytes) -> None:
        """Send `msg` with piggybacked broadcasts (memberlist `sendMsg`)."""
        avail = self._budget - len(msg) - COMPOUND_HEADER_OVERHEAD
        extra = self._get_broadcasts(COMPOUND_OVERHEAD, avail, MAX_COMPOUND_PARTS - 1)
        payload = make_compound([msg, *extra]) if extra else msg
        # Like Go, the sendMsg path looks the peer up by address and finds nothing: no CRC.
        self._send_raw(to, payload, False)

    def _send_raw(self, to: Address, payload: bytes, crc: bool) -> None:
        data = encode_packet(
            payload,
            compress=self._compress,
            crc=crc,
            keyring=self._out_keyring,
            encryption_version=self._enc_version,
            label=self._label,
        )
        self._out.append(Datagram(to, data))

    def _crc_for_address(self, to: Address) -> bool:
        rec = self._table.by_addr.get(to)
        return rec is not None and rec.pmax >= 5

    def _frame(self, msg: StreamMessage) -> bytes:
        return frame_stream(
            encode_stream_message(msg),
            compress=self._compress,
            keyring=self._out_keyring,
            encryption_version=self._enc_version,
            label=self._label,
        )

    def _decoder(self) -> StreamDecoder:
        return StreamDecoder(
            keyring=self._keyring,
            label=self._label,
            verify_incoming=self.config.gossip_verify_incoming,
            max_bytes=self.config.max_stream_bytes,
        )

    # ------------------------------------------------------------------ datagrams

    def receive_datagram(self, data: bytes, sender: Address, now: float) -> None:
        """One UDP payload from `sender`."""
        errors: list[DecodeError] = []
        try:
            messages = decode_packet(
                data,
                keyring=self._keyring,
                label=self._label,
                verify_incoming=self.config.gossip_verify_incoming,
                errors=errors,
            )
        except DecodeError as exc:
            self._drops[exc.reason] += 1
            return
        for err in errors:
            self._drops[err.reason] += 1
        for msg in messages:
            self._handle_message(msg, sender, now)

    def _handle_message(self, msg: Message, sender: Address, now: float) -> None:
        if type(msg) is Alive:  # most messages are gossiped alives: test that first
            if self.config.protocol_version < 2 or msg.port == 0:
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

    def _handle_ping(self, ping: Ping, sender: Address) -> None:
        if ping.node and ping.node != self.name:
            self._drops["ping_other_node"] += 1
            return
        payload = self._ping_hook.ack_payload() if self._ping_hook is not None else None
        to = self._reply_address(ping.source_addr, ping.source_port, sender)
        if to is None:
            return
        self._send_msg(to, encode_message(AckResp(seq_no=ping.seq_no, payload=payload)))

    def _reply_address(self, addr: bytes, port: int, sender: Address) -> Address | None:
        if addr and port > 0:
            host = bytes_to_host(addr)
            if host is None:
                self._drops["bad_address"] += 1
                return None
            return (host, port)
        return sender

    def _handle_indirect_ping(self, ind: IndirectPingReq, sender: Address, now: float) -> None:
        port = ind.port
        if self.config.protocol_version < 2 or port == 0:
            port = self._advertise[1]
        host = bytes_to_host(ind.target)
        origin = self._reply_address(ind.source_addr, ind.source_port, sender)
        if host is None or origin is None:
            if host is None:
                self._drops["bad_address"] += 1
            return
        seq = self._next_seq()
        self._relays[seq] = _Relay(origin=origin, origin_seq=ind.seq_no, nack=ind.nack)
        self._deadlines.set(("relay", seq), now + self.config.probe_timeout)
        ping = Ping(
            seq_no=seq,
            node=ind.node,
            source_addr=self._addr_bytes,
            source_node=self.name,
            source_port=self._advertise[1],
        )
        self._send_msg((host, port), encode_message(ping))

    def _relay_timeout(self, seq: int) -> None:
        relay = self._relays.pop(seq, None)
        if relay is not None and relay.nack:
            self._send_msg(relay.origin, encode_message(NackResp(seq_no=relay.origin_seq)))

    def _handle_ack(self, ack: AckResp, now: float) -> None:
        probe = self._probe
        if probe is not None and probe.seq == ack.seq_no:
            self._probe_acked(probe, ack.payload, now)
            return
        relay = self._relays.pop(ack.seq_no, None)
        if relay is not None:
            self._deadlines.cancel(("relay", ack.seq_no))
            self._send_msg(relay.origin, encode_message(AckResp(seq_no=relay.origin_seq)))
            return
        self._drops["late_ack"] += 1

    def _handle_nack(self, nack: NackResp) -> None:
        probe = self._probe
        if probe is not None and probe.seq == nack.seq_no:
            probe.nacks += 1
        else:
            self._drops["late_nack"] += 1

    def _deliver_user(self, data: bytes) -> None:
        self._events.append(UserMessage(data))
        if self._message_hook is not None:
            self._message_hook.notify_message(data)

    # ------------------------------------------------------------------ member rules

    def _alive_node(
        self,
        a: Alive,
        now: float,
        *,
        bootstrap: bool = False,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        table = self._table
        rec = table.get(a.node)
        is_local = a.node == self.name
        if (
            rec is not None
            and not is_local
            and a.incarnation <= rec.incarnation
            and a.port == rec.port
            and a.addr == rec.addr_bytes
        ):
            return  # stale news about a known member: the overwhelmingly common case
        if self._left and is_local:
            return
        vsn = a.vsn
        if not vsn_is_sane(vsn):
            self._drops["bad_vsn"] += 1
            return
        host = bytes_to_host(a.addr)
        if host is None:
            self._drops["bad_address"] += 1
            return
        meta = a.meta or b""
        if self._alive_hook is not None:
            if len(vsn) < 6:
                self._drops["alive_no_vsn"] += 1
                return
            claim = Member(a.node, (host, a.port), a.incarnation, _ALIVE, meta, vsn)
            if self._alive_hook.notify_alive(claim) is not None:
                self._drops["alive_vetoed"] += 1
                return
        updates_address = False
        if rec is None:
            rec = MemberRecord(a.node, host, a.addr, a.port, meta)
            if len(vsn) == 6:
                rec.vsn = vsn
            table.add(rec, self._rng)
        elif rec.addr_bytes != a.addr or rec.port != a.port:
            reclaim = self.config.dead_node_reclaim_time
            can_reclaim = reclaim > 0 and now - rec.state_change > reclaim
            if rec.state is _LEFT or (rec.state is _DEAD and can_reclaim):
                updates_address = True
            else:
                existing = rec.snapshot()
                other = Member(a.node, (host, a.port), a.incarnation, _ALIVE, meta, vsn or bytes(6))
                self._drops["name_conflict"] += 1
                self._events.append(NameConflict(existing=existing, other=other))
                if self._conflict_hook is not None:
                    self._conflict_hook.notify_conflict(existing, other)
                return
        if not is_local and not updates_address and a.incarnation <= rec.incarnation:
            return
        if is_local and a.incarnation < rec.incarnation:
            return
        self._cancel_suspicion(a.node)
        old_state = rec.state
        old_meta = rec.meta
        if not bootstrap and is_local:
            if a.incarnation == rec.incarnation and meta == rec.meta and vsn == rec.vsn:
                return
            self._refute(rec, a.incarnation)
        else:
            self._broadcast_member(a.node, a, on_finished)
            if vsn:
                rec.vsn = vsn
            rec.incarnation = a.incarnation
            rec.meta = meta
            if rec.addr_bytes != a.addr or rec.port != a.port:
                table.move(rec, host, a.addr, a.port)
            if rec.state is not _ALIVE:
                rec.state = _ALIVE
                rec.state_change = now
        if old_state is _DEAD or old_state is _LEFT:
            self._events.append(MemberJoined(rec.snapshot()))
        elif old_meta != rec.meta:
            self._events.append(MemberUpdated(rec.snapshot()))

    def _suspect_node(self, s: Suspect, now: float) -> None:
        rec = self._table.get(s.node)
        if rec is None or s.incarnation < rec.incarnation:
            return
        susp = self._suspicions.get(s.node)
        if susp is not None:
            if susp.confirm(s.from_):
                self._broadcast_member(s.node, s)
                self._deadlines.set(("suspect", s.node), susp.deadline)
            return
        if rec.state is not _ALIVE:
            return
        if s.node == self.name:
            self._refute(rec, s.incarnation)
            return
        self._broadcast_member(s.node, s)
        cfg = self.config
        rec.incarnation = s.incarnation
        rec.state = _SUSPECT
        rec.state_change = now
        n = len(self._table)
        k = cfg.suspicion_mult - 2
        if n - 2 < k or not cfg.lha_suspicion:
            k = 0
        min_ = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval)
        max_ = cfg.suspicion_max_timeout_mult * min_ if cfg.lha_suspicion else min_
        susp = Suspicion(s.from_, k, min_, max_, now)
        self._suspicions[s.node] = susp
        self._deadlines.set(("suspect", s.node), susp.deadline)
        self._events.append(MemberSuspected(rec.snapshot()))

    def _suspicion_expired(self, name: str, now: float) -> None:
        susp = self._suspicions.pop(name, None)
        rec = self._table.get(name)
        if susp is None or rec is None or rec.state is not _SUSPECT:
            return
        self._dead_node(Dead(incarnation=rec.incarnation, node=name, from_=self.name), now)

    def _cancel_suspicion(self, name: str) -> None:
        if self._suspicions.pop(name, None) is not None:
            self._deadlines.cancel(("suspect", name))

    def _dead_node(self, d: Dead, now: float) -> None:
        rec = self._table.get(d.node)
        if rec is None or d.incarnation < rec.incarnation:
            return
        self._cancel_suspicion(d.node)
        if rec.dead_or_left:
            return
        if d.node == self.name:
            if not self._left:
                self._refute(rec, d.incarnation)
                return
            self._broadcast_member(d.node, d, self._leave_broadcast_sent)
        else:
            self._broadcast_member(d.node, d)
        rec.incarnation = d.incarnation
        rec.state = _LEFT if d.node == d.from_ else _DEAD
        rec.state_change = now
        snap = rec.snapshot()
        self._events.append(MemberLeft(snap) if rec.state is _LEFT else MemberFailed(snap))

    def _refute(self, rec: MemberRecord, accused: int) -> None:
        inc = self._next_incarnation()
        if accused >= inc:
            inc = self._skip_incarnation(accused - inc + 1)
        rec.incarnation = inc
        if self.config.lha_probe:
            self._awareness.apply_delta(1)
        alive = Alive(
            incarnation=inc,
            node=rec.name,
            addr=rec.addr_bytes,
            port=rec.port,
            meta=rec.meta or None,
            vsn=rec.vsn,
        )
        self._broadcast_member(rec.name, alive)

    def _next_incarnation(self) -> int:
        self._incarnation = (self._incarnation + 1) & U32
        return self._incarnation

    def _skip_incarnation(self, offset: int) -> int:
        self._incarnation = (self._incarnation + offset) & U32
        return self._incarnation

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & U32
        return self._seq

    def _any_alive(self) -> bool:
        return any(not r.dead_or_left and r.name != self.name for r in self._table.order)

    def _leave_broadcast_sent(self) -> None:
        if self._leave_waiting:
            self._leave_done(timed_out=False)

    def _leave_done(self, *, timed_out: bool) -> None:
        self._leave_waiting = False
        self._deadlines.cancel(_LEAVE)
        self._events.append(LeaveCompleted(timed_out=timed_out))

    # ------------------------------------------------------------------ push/pull

    def _push_pull_tick(self, now: float) -> None:
        cfg = self.config
        self._deadlines.set(
            _PUSH_PULL, now + push_pull_scale(cfg.push_pull_interval, len(self._table))
        )
        me = self.name
        peers = self._table.k_random(
            1, self._rng, lambda r: r.name == me or r.state is not _ALIVE
        )
        if peers:
            self._start_push_pull(peers[0].address, now, join=False, batch=None)

    def _local_state(self, join: bool) -> PushPull:
        states = tuple(
            PushNodeState(
                name=r.name,
                addr=r.addr_bytes,
                port=r.port,
                incarnation=r.incarnation,
                state=r.state.value,
                meta=r.meta or None,
                vsn=r.vsn,
            )
            for r in self._table.order
        )
        user = b""
        if self._state_hook is not None:
            user = bytes(self._state_hook.local_state(join))
        header = PushPullHeader(nodes=len(states), user_state_len=len(user), join=join)
        return PushPull(header=header, states=states, user_state=user)

    def _start_push_pull(
        self, peer: Address, now: float, *, join: bool, batch: int | None
    ) -> None:
        sid = self._new_stream_id()
        self._streams[sid] = _Stream(
            kind="push_pull", peer=peer, decoder=self._decoder(), join=join, batch=batch
        )
        self._out.append(StreamOpen(sid, peer))
        self._out.append(StreamSend(sid, self._frame(self._local_state(join))))
        self._deadlines.set(("stream", sid), now + self.config.tcp_timeout)

    def _merge_remote_state(self, pp: PushPull, now: float) -> str | None:
        """Verify and merge a peer's push/pull; returns an error text on refusal."""
        join = pp.header.join
        error = verify_protocol(
            ((r.vsn, r.state is _ALIVE) for r in self._table.order), pp.states
        )
        if error is not None:
            self._drops["incompatible_version"] += 1
            return error
        if join and self._merge_hook is not None:
            peers = []
            for st in pp.states:
                host = bytes_to_host(st.addr) or ""
                state = MemberState(st.state) if 0 <= st.state <= 3 else _DEAD
                peers.append(Member(st.name, (host, st.port), st.incarnation, state,
                                    st.meta or b"", st.vsn))
            veto = self._merge_hook.notify_merge(peers)
            if veto is not None:
                self._drops["merge_vetoed"] += 1
                return veto
        self._merge_state(pp.states, now)
        if pp.user_state:
            self._events.append(RemoteState(data=pp.user_state, join=join))
            if self._state_hook is not None:
                self._state_hook.merge_remote_state(pp.user_state, join)
        return None

    def _merge_state(self, states: Sequence[PushNodeState], now: float) -> None:
        me = self.name
        for st in states:
            if st.state == 0:
                self._alive_node(
                    Alive(
                        incarnation=st.incarnation,
                        node=st.name,
                        addr=st.addr,
                        port=st.port,
                        meta=st.meta,
                        vsn=st.vsn,
                    ),
                    now,
                )
            elif st.state == 3:
                self._dead_node(Dead(incarnation=st.incarnation, node=st.name, from_=st.name), now)
            elif st.state in (1, 2):
                # A remote "dead" only makes us suspect (we verify ourselves).
                self._suspect_node(Suspect(incarnation=st.incarnation, node=st.name, from_=me), now)
            else:
                self._drops["bad_state"] += 1

    # ------------------------------------------------------------------ streams

    def stream_accepted(self, peer: Address, now: float) -> int:
        """An inbound stream from `peer` was accepted; returns the id for later calls."""
        sid = self._new_stream_id()
        if self._inbound >= self.config.max_inbound_streams:
            self._drops["too_many_streams"] += 1
            self._out.append(StreamClose(sid))
            return sid
        self._inbound += 1
        self._streams[sid] = _Stream(kind="in", peer=peer, decoder=self._decoder())
        self._deadlines.set(("stream", sid), now + self.config.tcp_timeout)
        return sid

    def stream_data(self, stream_id: int, data: bytes, now: float) -> None:
        """Bytes received on stream `stream_id`."""
        st = self._streams.get(stream_id)
        if st is None or not data:
            return
        try:
            msg = st.decoder.feed(data)
        except DecodeError as exc:
            self._drops[exc.reason] += 1
            if st.kind == "in":
                self._out.append(StreamSend(stream_id, self._frame(ErrResp(error=str(exc)))))
            self._close_stream(stream_id)
            self._stream_failed(st, f"decode: {exc}", now)
            return
        if msg is None:
            return
        self._close_stream(stream_id, reply_first=st.kind == "in")
        if st.kind == "in":
            self._handle_inbound(stream_id, st, msg, now)
        else:
            self._handle_reply(st, msg, now)

    def stream_closed(self, stream_id: int, now: float, error: str | None = None) -> None:
        """The peer closed the stream, it broke, or the connection could not be made."""
        st = self._streams.pop(stream_id, None)
        if st is None:
            return
        self._deadlines.cancel(("stream", stream_id))
        if st.kind == "in":
            self._inbound -= 1
            return
        self._stream_failed(st, error or "closed before reply", now)

    def _stream_timeout(self, stream_id: int, now: float) -> None:
        st = self._streams.get(stream_id)
        if st is None:
            return
        if st.kind == "in":
            self._drops["stream_timeout"] += 1
        self._close_stream(stream_id)
        self._stream_failed(st, "timeout", now)

    def _close_stream(self, stream_id: int, *, reply_first: bool = False) -> None:
        """Forget the stream and cancel its deadline; emits StreamClose unless replying first."""
        st = self._streams.pop(stream_id, None)
        self._deadlines.cancel(("stream", stream_id))
        if st is not None and st.kind == "in":
            self._inbound -= 1
        if not reply_first:
            self._out.append(StreamClose(stream_id))

    def _stream_failed(self, st: _Stream, error: str, now: float) -> None:
        if st.kind == "push_pull":
            self._push_pull_done(st, f"{st.peer[0]}:{st.peer[1]}: {error}")
        # A failed TCP ping simply leaves probe.tcp_ok False.

    def _handle_inbound(self, sid: int, st: _Stream, msg: StreamMessage, now: float) -> None:
        if isinstance(msg, PushPull):
            # Reply with our state before merging theirs (memberlist `handleConn`).
            self._out.append(StreamSend(sid, self._frame(self._local_state(msg.header.join))))
            self._out.append(StreamClose(sid))
            self._merge_remote_state(msg, now)
        elif isinstance(msg, Ping):
            if msg.node and msg.node != self.name:
                self._drops["ping_other_node"] += 1
            else:
                self._out.append(StreamSend(sid, self._frame(AckResp(seq_no=msg.seq_no))))
            self._out.append(StreamClose(sid))
        elif isinstance(msg, UserStream):
            self._out.append(StreamClose(sid))
            if msg.data:
                self._deliver_user(msg.data)
        else:
            self._drops["unexpected_stream_message"] += 1
            self._out.append(StreamClose(sid))

    def _handle_reply(self, st: _Stream, msg: StreamMessage, now: float) -> None:
        if st.kind == "tcp_ping":
            probe = self._probe
            if isinstance(msg, AckResp) and probe is not None and probe.seq == msg.seq_no:
                probe.tcp_ok = True
                probe.tcp_stream = None
            elif not isinstance(msg, AckResp) or probe is None or probe.seq != msg.seq_no:
                self._drops["bad_tcp_ack"] += 1
            return
        if isinstance(msg, PushPull):
            error = self._merge_remote_state(msg, now)
            where = f"{st.peer[0]}:{st.peer[1]}"
            self._push_pull_done(st, None if error is None else f"{where}: {error}")
        elif isinstance(msg, ErrResp):
            self._push_pull_done(st, f"{st.peer[0]}:{st.peer[1]}: remote error: {msg.error}")
        else:
            self._drops["unexpected_stream_message"] += 1
            self._push_pull_done(st, f"{st.peer[0]}:{st.peer[1]}: unexpected reply")

    def _push_pull_done(self, st: _Stream, error: str | None) -> None:
        if st.batch is None:
            return
        batch = self._joins.get(st.batch)
        if batch is None:
            return
        batch.pending -= 1
        if error is None:
            batch.joined += 1
        else:
            batch.errors.append(error)
        if batch.pending == 0:
            del self._joins[st.batch]
            self._events.append(JoinCompleted(joined=batch.joined, errors=tuple(batch.errors)))

    def _new_stream_id(self) -> int:
        sid = self._next_stream
        self._next_stream += 1
        return sid
