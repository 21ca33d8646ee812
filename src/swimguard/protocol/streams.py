"""Streams: push/pull (join and anti-entropy), the TCP fallback ping, reliable user messages.

memberlist `pushPullNode` / `sendAndReceiveState` / `mergeRemoteState` /
`handleConn` / `sendPingAndWaitForAck`, spec/memberlist-wire.md §9. The core owns
every stream deadline (`Config.tcp_timeout`, or the probe's end for a TCP ping)
and bounds concurrent inbound streams (`Config.max_inbound_streams`) and the memory
their decoders hold together (`Config.max_inbound_stream_memory`). An inbound
stream's deadline is absolute: loop lag (which a hostile stream can cause) never
moves it (see `postpone`).

`Streams` owns the open streams, their ids and the joins in progress; it merges a
peer's state through `Membership` and opens a TCP ping for `Prober`, which hands a
callback that decides whether the ack is the one it waits for.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from swimguard.config import Config
from swimguard.protocol.addresses import bytes_to_host
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.events import (
    Event,
    JoinCompleted,
    ReliableCompleted,
    RemoteState,
    deliver_user_message,
)
from swimguard.protocol.hooks import MergeHook, MessageHook, StateHook
from swimguard.protocol.join_sync import JoinSync
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.membership import Membership
from swimguard.protocol.outgoing import Address, StreamClose, StreamOpen, StreamSend
from swimguard.protocol.scaling import push_pull_scale
from swimguard.protocol.stats import ProtocolStats
from swimguard.protocol.table import MemberTable
from swimguard.protocol.timers import PUSH_PULL_TICK, StreamTimeout, Timer
from swimguard.protocol.transmit import Transmitter
from swimguard.protocol.versions import verify_protocol
from swimguard.wire.errors import DecodeError
from swimguard.wire.messages import (
    AckResp,
    ErrResp,
    NodeState,
    Ping,
    PushNodeState,
    PushPullHeader,
    maker_for,
)
from swimguard.wire.state_memo import STATE_ROW
from swimguard.wire.stream import (
    PushPull,
    StreamDecoder,
    StreamMessage,
    UserStream,
    encode_push_pull,
)

# MemberState -> push/pull State as a plain int (an enum's `.value` is slow in a loop over N).
_WIRE_STATE: Final = {state: int(NodeState[state.name]) for state in MemberState}
if any(state._value_ != wire for state, wire in _WIRE_STATE.items()):
    raise AssertionError("MemberState values must be the push/pull State numbers")
# local_state_bytes writes rows in this order.
if STATE_ROW != ("addr", "incarnation", "meta", "name", "port", "state", "vsn"):
    raise AssertionError(f"push/pull state rows changed order: {STATE_ROW}")
# PushNodeState(name, addr, port, incarnation, state, meta, vsn), built once per member.
_new_state = maker_for(PushNodeState)
# push/pull State -> MemberState, for the merge hook (an unknown state shows as dead).
_MEMBER_STATE: Final = {int(NodeState[state.name]): state for state in MemberState}


ALIVE, DEAD = MemberState.ALIVE, MemberState.DEAD


class StreamKind(enum.Enum):
    """Why a stream is open."""

    INBOUND = "in"  # a peer's stream we answer (push/pull, TCP ping, user message)
    PUSH_PULL = "push_pull"  # our push/pull (join or anti-entropy)
    TCP_PING = "tcp_ping"  # our TCP fallback ping of the probe target
    USER_OUT = "user_out"  # our reliable user message (`send_reliable`)


@dataclasses.dataclass(slots=True)
class StreamState:
    """An open stream the core is waiting on."""

    kind: StreamKind
    peer: Address
    decoder: StreamDecoder
    join: bool = False
    batch: int | None = None
    # TCP ping: called with the ack's sequence number and arrival time, True if it is the
    # awaited one.
    on_ack: Callable[[int, float], bool] | None = None
    started: float = 0.0  # when we opened it (push/pull duration for metrics)


@dataclasses.dataclass(slots=True)
class JoinBatch:
    """The seeds of one `join()` call still being contacted."""

    pending: int
    joined: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


class Streams:
    """Stream exchanges the core initiates or accepts."""

    def __init__(
        self,
        config: Config,
        *,
        stats: ProtocolStats,
        name: str,
        rng: random.Random,
        table: MemberTable,
        deadlines: Deadlines[Timer],
        tx: Transmitter,
        membership: Membership,
        events: list[Event],
        drops: Counter[str],
        state_hook: StateHook | None,
        merge_hook: MergeHook | None,
        message_hook: MessageHook | None,
    ) -> None:
        self._config = config
        self._stats = stats
        self._name = name
        self._rng = rng
        self._table = table
        self._deadlines = deadlines
        self._tx = tx
        self._membership = membership
        self._events = events
        self._drops = drops
        self._state_hook = state_hook
        self._merge_hook = merge_hook
        self._message_hook = message_hook
        self.by_id: dict[int, StreamState] = {}
        """Open streams by id."""
        self.inbound = 0
        """How many of them are inbound."""
        self._next_stream = 1
        self._joins: dict[int, JoinBatch] = {}
        self.join_sync = JoinSync(config.join_sync_delay, config.push_pull_interval)
        """The join-time sync extension's pending sync (`Config.join_sync_delay`)."""
        self._next_join = 1

    @property
    def joining(self) -> bool:
        """A `join()` is still waiting for some seed."""
        return bool(self._joins)

    def _new_stream_id(self) -> int:
        sid = self._next_stream
        self._next_stream += 1
        return sid

    def join(self, seeds: Sequence[Address], *, now: float) -> None:
        """Push/pull (join=True) with each seed; `JoinCompleted` once all answered or failed."""
        if not seeds:
            self._events.append(JoinCompleted(joined=0, errors=()))
            return
        batch_id = self._next_join
        self._next_join += 1
        self._joins[batch_id] = JoinBatch(pending=len(seeds))
        for seed in seeds:
            self._start_push_pull(seed, now=now, join=True, batch=batch_id)

    def send_reliable(self, to: Address, data: bytes, *, now: float) -> int:
        """Open a stream to `to` carrying one user message; `ReliableCompleted` when it ends.

        Returns the stream id, which the `ReliableCompleted` event carries as `call`.
        Raises ValueError, before anything is opened, for a message the receiver's
        stream limit (`Config.max_stream_bytes`) would refuse.
        """
        framed = self._tx.frame(UserStream(data))
        limit = self._config.max_stream_bytes
        if len(framed) > limit:
            raise ValueError(
                f"reliable message of {len(data)} bytes is {len(framed)} bytes framed;"
                f" the stream limit (Config.max_stream_bytes) is {limit}"
            )
        sid = self._new_stream_id()
        decoder = self._tx.decoder()
        self.by_id[sid] = StreamState(kind=StreamKind.USER_OUT, peer=to, decoder=decoder)
        self._tx.emit(StreamOpen(sid, to))
        self._tx.emit(StreamSend(sid, framed))
        self._deadlines.set(StreamTimeout(sid), now + self._config.tcp_timeout)
        return sid

    def open_tcp_ping(
        self, to: Address, ping: Ping, deadline: float, on_ack: Callable[[int, float], bool]
    ) -> int:
        """Open the TCP fallback ping `ping` to `to`; returns its stream id."""
        sid = self._new_stream_id()
        self.by_id[sid] = StreamState(
            kind=StreamKind.TCP_PING, peer=to, decoder=self._tx.decoder(), on_ack=on_ack
        )
        self._tx.emit(StreamOpen(sid, to))
        self._tx.emit(StreamSend(sid, self._tx.frame(ping)))
        self._deadlines.set(StreamTimeout(sid), deadline)
        return sid

    def postpone(self, lag: float, *, now: float) -> None:
        """Loop lag: our streams do not count the time we were frozen.

        A TCP ping follows its probe (`Prober.postpone`); an inbound stream's deadline is
        absolute, as a hostile stream can cause the very lag that would otherwise extend it.
        """
        for sid, st in self.by_id.items():
            key = StreamTimeout(sid)
            when = self._deadlines.get(key)
            if (
                when is not None
                and st.kind is not StreamKind.TCP_PING
                and st.kind is not StreamKind.INBOUND
            ):
                self._deadlines.set(key, max(when + lag, now))

    def push_pull_tick(self, *, now: float) -> None:
        """The `PushPullTick` timer: push/pull with one random alive member (a pending
        join-time sync may first wait for our table to stop changing)."""
        sync = self.join_sync
        if sync.pending:  # only then is the rng drawn: memberlist's rules stay as they were
            later = sync.tick(now=now, table_size=len(self._table), jitter=self._rng.random())
            if later is not None:
                self._deadlines.set(PUSH_PULL_TICK, later)
                return
        cfg = self._config
        self._deadlines.set(
            PUSH_PULL_TICK, now + push_pull_scale(cfg.push_pull_interval, len(self._table))
        )
        me = self._name
        peers = self._table.k_random(1, self._rng, lambda r: r.name == me or r.state is not ALIVE)
        if peers:
            self._start_push_pull(peers[0].address, now=now, join=False, batch=None)

    def local_state(self, join: bool) -> PushPull:
        """Our push/pull: every member's state and the hook's user state."""
        # `_value_` is the push/pull State (checked at import): a plain attribute,
        # where `_WIRE_STATE[r.state]` would call Enum.__hash__ (Python code) per member.
        states = tuple(
            _new_state(
                r.name,
                r.addr_bytes,
                r.port,
                r.incarnation,
                r.state._value_,
                r.meta or None,
                r.vsn,
            )
            for r in self._table.order
        )
        user = self._user_state(join)
        header = PushPullHeader(nodes=len(states), user_state_len=len(user), join=join)
        return PushPull(header=header, states=states, user_state=user)

    def local_state_bytes(self, join: bool) -> bytes:
        """`encode_stream_message(self.local_state(join))`, what we send: the member
        table's values go to the encoder as rows, with no PushNodeState per member
        (N of them per push/pull, nearly all unchanged since the last one)."""
        rows = [
            (r.addr_bytes, r.incarnation, r.meta or None, r.name, r.port, r.state._value_, r.vsn)
            for r in self._table.order
        ]
        user = self._user_state(join)
        header = PushPullHeader(nodes=len(rows), user_state_len=len(user), join=join)
        return encode_push_pull(header, rows, user)

    def _user_state(self, join: bool) -> bytes:
        if self._state_hook is None:
            return b""
        return bytes(self._state_hook.local_state(join))

    def _start_push_pull(self, peer: Address, *, now: float, join: bool, batch: int | None) -> None:
        sid = self._new_stream_id()
        self.by_id[sid] = StreamState(
            kind=StreamKind.PUSH_PULL,
            peer=peer,
            decoder=self._tx.decoder(),
            join=join,
            batch=batch,
            started=now,
        )
        self._tx.emit(StreamOpen(sid, peer))
        self._tx.emit(StreamSend(sid, self._tx.frame(self.local_state_bytes(join))))
        self._deadlines.set(StreamTimeout(sid), now + self._config.tcp_timeout)

    def _merge_remote_state(self, pp: PushPull, *, now: float) -> str | None:
        """Verify and merge a peer's push/pull; returns an error text on refusal."""
        join = pp.header.join
        error = verify_protocol(((r.vsn, r.state is ALIVE) for r in self._table.order), pp.states)
        if error is not None:
            self._drops["incompatible_version"] += 1
            return error
        if join and self._merge_hook is not None:
            peers = []
            for st in pp.states:
                host = bytes_to_host(st.addr) or ""
                state = _MEMBER_STATE.get(st.state, DEAD)
                peers.append(
                    Member(st.name, (host, st.port), st.incarnation, state, st.meta or b"", st.vsn)
                )
            veto = self._merge_hook.notify_merge(peers)
            if veto is not None:
                self._drops["merge_vetoed"] += 1
                return veto
        self._membership.merge_state(pp.states, now=now)
        if pp.user_state:
            self._events.append(RemoteState(data=pp.user_state, join=join))
            if self._state_hook is not None:
                self._state_hook.merge_remote_state(pp.user_state, join)
        return None

    def stream_accepted(self, peer: Address, *, now: float) -> int:
        """An inbound stream from `peer` was accepted; returns the id for later calls."""
        sid = self._new_stream_id()
        if self.inbound >= self._config.max_inbound_streams:
            self._drops["too_many_streams"] += 1
            self._tx.emit(StreamClose(sid))
            return sid
        self.inbound += 1
        self.by_id[sid] = StreamState(
            kind=StreamKind.INBOUND, peer=peer, decoder=self._tx.decoder()
        )
        self._deadlines.set(StreamTimeout(sid), now + self._config.tcp_timeout)
        return sid

    def stream_data(
        self, stream_id: int, data: bytes, *, now: float, max_work: int | None = None
    ) -> bool:
        """Bytes received on stream `stream_id`; True if some are still to be parsed.

        With `max_work`, at most that many bytes are parsed in this call (a driver's
        bound on the time one call takes; 0 only buffers `data`); while this returns
        True the driver calls again with `data=b""` on a later turn, and should stop
        reading the stream. Buffered bytes count against the inbound memory budget.
        """
        st = self.by_id.get(stream_id)
        if st is None or not (data or st.decoder.pending):
            return False
        try:
            msg = st.decoder.feed(data, max_work=max_work)
        except DecodeError as exc:
            self._drops[exc.reason] += 1
            if st.kind is StreamKind.INBOUND:
                self._tx.emit(StreamSend(stream_id, self._tx.frame(ErrResp(error=str(exc)))))
            self.close(stream_id)
            self._stream_failed(stream_id, st, f"decode: {exc}", now=now)
            return False
        if msg is None:
            if st.kind is StreamKind.INBOUND:
                self._enforce_stream_memory()
            return stream_id in self.by_id and st.decoder.pending
        self.close(stream_id, reply_first=st.kind is StreamKind.INBOUND)
        if st.kind is StreamKind.INBOUND:
            try:
                self._handle_inbound(stream_id, st, msg, now=now)
            except Exception:
                # The core has forgotten the stream: whatever failed, the driver must not
                # hold the connection open for it (the close normally follows the reply).
                self._tx.emit(StreamClose(stream_id))
                raise
        else:
            self._handle_reply(stream_id, st, msg, now=now)
        return False

    def _enforce_stream_memory(self) -> None:
        """Close the largest inbound streams (newest first on ties) while over budget."""
        sizes = [
            (st.decoder.footprint, sid)
            for sid, st in self.by_id.items()
            if st.kind is StreamKind.INBOUND
        ]
        total = sum(size for size, _sid in sizes)
        limit = self._config.max_inbound_stream_memory
        if total <= limit:
            return
        sizes.sort(reverse=True)
        for size, sid in sizes:
            if total <= limit:
                break
            self._drops["stream_memory_budget"] += 1
            self.close(sid)
            total -= size

    def stream_closed(self, stream_id: int, error: str | None = None, *, now: float) -> None:
        """The peer closed the stream, it broke, or the connection could not be made."""
        st = self.by_id.pop(stream_id, None)
        if st is None:
            return
        self._deadlines.cancel(StreamTimeout(stream_id))
        if st.kind is StreamKind.INBOUND:
            self.inbound -= 1
            return
        if st.kind is StreamKind.USER_OUT:
            if error is not None:  # a plain EOF is the receiver's "got it"
                self._drops["reliable_failed"] += 1
            self._events.append(ReliableCompleted(stream_id, st.peer, error))
            return
        self._stream_failed(stream_id, st, error or "closed before reply", now=now)

    def stream_timeout(self, stream_id: int, *, now: float) -> None:
        """The `StreamTimeout` timer: the stream took too long."""
        st = self.by_id.get(stream_id)
        if st is None:
            return
        if st.kind is StreamKind.INBOUND:
            self._drops["stream_timeout"] += 1
        self.close(stream_id)
        self._stream_failed(stream_id, st, "timeout", now=now)

    def close_if_open(self, stream_id: int) -> None:
        """Close our stream `stream_id` unless it is already closed."""
        if stream_id in self.by_id:
            self.close(stream_id)

    def close(self, stream_id: int, *, reply_first: bool = False) -> None:
        """Forget the stream and cancel its deadline; emits StreamClose unless replying first."""
        st = self.by_id.pop(stream_id, None)
        self._deadlines.cancel(StreamTimeout(stream_id))
        if st is not None and st.kind is StreamKind.INBOUND:
            self.inbound -= 1
        if not reply_first:
            self._tx.emit(StreamClose(stream_id))

    def _stream_failed(self, stream_id: int, st: StreamState, error: str, *, now: float) -> None:
        if st.kind is StreamKind.USER_OUT:
            self._drops["reliable_failed"] += 1
            self._events.append(ReliableCompleted(stream_id, st.peer, error))
        elif st.kind is StreamKind.PUSH_PULL:
            self._push_pull_done(st, f"{st.peer[0]}:{st.peer[1]}: {error}")
        # A failed TCP ping simply leaves probe.tcp_ok False.

    def _handle_inbound(self, sid: int, st: StreamState, msg: StreamMessage, *, now: float) -> None:
        if isinstance(msg, PushPull):
            # Reply with our state before merging theirs (memberlist `handleConn`).
            self._tx.emit(StreamSend(sid, self._tx.frame(self.local_state_bytes(msg.header.join))))
            self._tx.emit(StreamClose(sid))
            self._merge_remote_state(msg, now=now)
        elif isinstance(msg, Ping):
            if msg.node and msg.node != self._name:
                self._drops["ping_other_node"] += 1
            else:
                self._tx.emit(StreamSend(sid, self._tx.frame(AckResp(seq_no=msg.seq_no))))
            self._tx.emit(StreamClose(sid))
        elif isinstance(msg, UserStream):
            self._tx.emit(StreamClose(sid))
            if msg.data:
                deliver_user_message(self._events, self._message_hook, msg.data, st.peer)
        else:
            self._drops["unexpected_stream_message"] += 1
            self._tx.emit(StreamClose(sid))

    def _handle_reply(
        self, stream_id: int, st: StreamState, msg: StreamMessage, *, now: float
    ) -> None:
        if st.kind is StreamKind.USER_OUT:
            # Nobody answers a user message, except with an error (memberlist replies
            # ErrResp to a stream it could not read): the message did not arrive.
            self._drops["unexpected_stream_message"] += 1
            detail = msg.error if isinstance(msg, ErrResp) else type(msg).__name__
            self._stream_failed(stream_id, st, f"the receiver answered: {detail}", now=now)
            return
        if st.kind is StreamKind.TCP_PING:
            # The probe that opened it decides whether the ack is the one it waits for.
            on_ack = st.on_ack
            acked = on_ack is not None and isinstance(msg, AckResp) and on_ack(msg.seq_no, now)
            if not acked:
                self._drops["bad_tcp_ack"] += 1
            return
        if isinstance(msg, PushPull):
            error = self._merge_remote_state(msg, now=now)
            where = f"{st.peer[0]}:{st.peer[1]}"
            self._stats.push_pull_node.observe(now - st.started)
            if error is None and st.join:
                self._bring_sync_forward(now=now)
            self._push_pull_done(st, None if error is None else f"{where}: {error}")
        elif isinstance(msg, ErrResp):
            self._push_pull_done(st, f"{st.peer[0]}:{st.peer[1]}: remote error: {msg.error}")
        else:
            self._drops["unexpected_stream_message"] += 1
            self._push_pull_done(st, f"{st.peer[0]}:{st.peer[1]}: unexpected reply")

    def _bring_sync_forward(self, *, now: float) -> None:
        """A join succeeded: schedule the join-time sync (`protocol.join_sync`)."""
        due = self.join_sync.joined(now=now, table_size=len(self._table))
        if due is not None:
            self._deadlines.set(PUSH_PULL_TICK, due)

    def _push_pull_done(self, st: StreamState, error: str | None) -> None:
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
