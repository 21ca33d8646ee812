"""Serf's layer above memberlist, as much of it as a swimguard node needs to be a good citizen.

`SerfLayer` is pure (no IO, no clock reads): it encodes our join/leave intents and user
events, decodes the Serf messages peers gossip, keeps Serf's three Lamport clocks and its
user-event/query dedup rings, and builds/merges the push/pull user state. The driver
passes it memberlist user messages and push/pull state, broadcasts what it returns, and
drains `take_outgoing()` (re-gossip, query acks) after every call.

Serf's internal queries (`_serf_*`) are answered here (`internal_queries`) and not
reported as events: the key commands (`serf keys -install/-use/-remove/-list`) act on the
`keyring` given to the layer (the same object the node encrypts with), `_serf_ping` needs
only the ack, `_serf_conflict` gets our view of the name (`member_view`).

Queries both ways: `originate` sends one (its acks, responses and end come out as
events, bookkept by `query.QueryBook`), `respond` answers one we received (once, before
its deadline, through relays when asked: `query.AnswerBook`). Tag filters are Go regexps,
evaluated with RE2 (`google-re2`) as Serf does.

What is not done: the 5-minute expiry of intents about unknown names (the table is
bounded by size instead).
"""

from __future__ import annotations

import collections
import functools
import ipaddress
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgpack
import re2

from swimguard.protocol.names import check_local_name, is_text, name_problem
from swimguard.serf.clock import LamportClock
from swimguard.serf.events import (
    JoinIntentReceived,
    KeyringChanged,
    LeaveIntentReceived,
    QueryReceived,
    SerfBroadcast,
    SerfDirect,
    SerfEvent,
    SerfOutgoing,
    UserEventReceived,
)
from swimguard.serf.internal_queries import (
    CONFLICT_QUERY,
    KEY_QUERY_NAMES,
    KeyAnswer,
    KeyOp,
    answer_conflict,
    answer_key_query,
    key_response_payload,
)
from swimguard.serf.messages import (
    EVENT_BUFFER,
    U32,
    ConflictMember,
    Join,
    Leave,
    PushPull,
    Query,
    QueryFlag,
    QueryResponse,
    Relay,
    SerfDecodeError,
    SerfMessage,
    SerfMessageType,
    UserEvent,
    UserEventEntry,
    UserEvents,
    decode_message,
    encode_message,
)
from swimguard.serf.query import (
    FILTER_NODE,
    FILTER_TAG,
    AnswerBook,
    QueryBook,
    QueryParams,
    QueryRespondError,
    encode_filters,
)
from swimguard.wire.encryption import Keyring

__all__ = ["MemberStatus", "SerfLayer"]

# Serf agent's default UserEventSizeLimit (name + payload).
USER_EVENT_SIZE_LIMIT: Final = 512
QUERY_RESPONSE_SIZE_LIMIT: Final = 1024
QUERY_SIZE_LIMIT: Final = 1024
# Bound on names remembered with a status time: gossip may name anything.
MAX_NAMES: Final = 65536
# Bound on the UTF-8 bytes of those names (status map and left list each): both go out in
# every push/pull, which peers refuse above 20 MiB. 65,536 names of the longest allowed
# size (512 bytes) would take 32 MiB; 4 MiB still holds 65,536 names of 64 bytes.
MAX_NAME_TABLE_BYTES: Final = 4 * 1024 * 1024
# Per-name cost counted against it: the name plus a msgpack header and a Lamport time.
_NAME_OVERHEAD: Final = 12
_U64: Final = (1 << 64) - 1
# The types Serf sends as memberlist user messages (its delegate's NotifyMsg reads no
# other); push/pull state, conflict and key messages travel elsewhere.
_USER_MESSAGE_TYPES: Final = frozenset(
    int(t)
    for t in (
        SerfMessageType.LEAVE,
        SerfMessageType.JOIN,
        SerfMessageType.USER_EVENT,
        SerfMessageType.QUERY,
        SerfMessageType.QUERY_RESPONSE,
        SerfMessageType.RELAY,
    )
)
# Bound on distinct events (queries) kept per Lamport time: real clusters see a handful; a
# hostile push/pull could otherwise make each dedup check scan an unbounded list.
MAX_PER_SLOT: Final = 256
# Bound on the event ring's name+payload bytes (it is resent in every push/pull). Serf caps
# each event at 512 bytes, so a full ring of one event per slot needs 256 KiB.
MAX_EVENT_BYTES: Final = 2 * 1024 * 1024
# RE2 runs in linear time, but a long expression still costs memory to compile; Serf's
# queries fit in 1024 bytes, so a longer one came from a stream and is not evaluated.
_MAX_TAG_EXPR: Final = 1024
_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad expression from the network is counted, not logged

MemberStatus = Literal["alive", "left", "failed"]

INTERNAL_PREFIX: Final = "_serf_"


class SerfLayer:
    """Serf protocol state of one local member named `name`."""

    def __init__(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        check_local_name(name)
        self.name = name
        self.tags: dict[str, str] = dict(tags or {})
        # Changed in place by `serf keys` queries; share it with the node to take effect.
        self.keyring = keyring
        # Serf increments each clock once at creation.
        self.member_clock = LamportClock(1)
        self.event_clock = LamportClock(1)
        self.query_clock = LamportClock(1)
        # Serf's eventMinTime/queryMinTime: older user events and queries were seen before
        # a restart (the snapshot says so) and are dropped, not replayed (`restore_clocks`).
        self.event_min_time = 0
        self.query_min_time = 0
        # The newest user event and query accepted (ours and internal queries included):
        # what a snapshot records as `event-clock:` / `query-clock:`.
        self.last_event_ltime = 0
        self.last_query_ltime = 0
        self.leaving = False
        # Set during a join without replay (Serf's eventJoinIgnore): a join's push/pull
        # raises `event_min_time` to the peer's event clock; older events are ignored.
        self.ignore_old_events = False
        # name -> (status LTime, last accepted intent), most recently updated last.
        self._status: dict[str, tuple[int, Literal["join", "leave"]]] = {name: (0, "join")}
        self._status_bytes = _name_cost(name)
        self._left: dict[str, None] = {}
        self._left_bytes = 0
        self._events: list[UserEvents | None] = [None] * EVENT_BUFFER
        self._event_bytes = 0
        self._queries: list[tuple[int, set[int]] | None] = [None] * EVENT_BUFFER
        self.drops: collections.Counter[str] = collections.Counter()
        self.originated = QueryBook(self.drops)
        # Our view of a member by name (`_serf_conflict` answers); the node that owns the
        # member table sets it. None: we know no one.
        self.member_view: Callable[[str], ConflictMember | None] | None = None
        self.answerable = AnswerBook()
        self._outgoing: list[SerfOutgoing] = []
        self._pending_events: list[SerfEvent] = []
        self._query_seq = 0

    # --- our own messages ----------------------------------------------------------------

    def join_intent(self) -> bytes:
        """Serf join intent about us (to broadcast after a successful join)."""
        ltime = self.member_clock.time()
        self.member_clock.witness(ltime)
        self._accept_status(self.name, ltime, "join")
        return encode_message(Join(ltime, self.name))

    def leave_intent(self) -> bytes:
        """Serf leave intent about us; gossip it before the memberlist leave so Serf says "left"."""
        ltime = self.member_clock.time()
        self.member_clock.increment()
        self.leaving = True
        self._accept_status(self.name, ltime, "leave")
        return encode_message(Leave(ltime, self.name))

    def force_leave(self, node: str, *, prune: bool = False) -> tuple[bytes, list[SerfEvent]]:
        """A leave intent about another member (Serf's force-leave), and what it changed here.

        Handled as if received (a `LeaveIntentReceived` when it is news), and always
        returned for broadcast, as Serf does: peers that missed the member's failure still
        learn it left. ValueError for a name we could not send.
        """
        problem = name_problem(node)
        if problem is not None:
            raise ValueError(f"bad member name: {problem.value}")
        ltime = self.member_clock.time()
        self.member_clock.increment()
        msg = Leave(ltime, node, prune)
        events: list[SerfEvent] = []
        if self._on_leave(msg):
            events.append(LeaveIntentReceived(node, ltime, prune))
        return encode_message(msg), events

    def forget_member(self, name: str) -> None:
        """`name` was reaped: drop its intent LTime and its place in the left list."""
        if name == self.name:
            return
        self._forget_left(name)
        if self._status.pop(name, None) is not None:
            self._status_bytes -= _name_cost(name)

    def newest_intent_is_leave(self, name: str) -> bool:
        """True if the newest intent accepted about `name` is a leave."""
        entry = self._status.get(name)
        return entry is not None and entry[1] == "leave"

    def user_event(self, name: str, payload: bytes, *, coalesce: bool = True) -> bytes:
        """A new Serf user event to broadcast; raises ValueError above Serf's 512-byte limit."""
        self.check_user_event(name, payload)
        msg = UserEvent(self.event_clock.time(), name, payload, coalesce)
        self.event_clock.increment()
        self._record_event(msg)
        return encode_message(msg)

    @staticmethod
    def check_user_event(name: str, payload: bytes) -> None:
        """Raise ValueError if `user_event(name, payload)` would refuse it."""
        if not is_text(name):
            raise ValueError("user event name is not valid Unicode text")
        if len(name.encode()) + len(payload) > USER_EVENT_SIZE_LIMIT:
            raise ValueError(f"user event larger than {USER_EVENT_SIZE_LIMIT} bytes")

    def respond(self, query: Query, payload: bytes, *, now: float | None = None) -> SerfDirect:
        """The response to `query`, to send; raises `QueryRespondError` with Serf's text.

        Once per query, before its deadline (`now` after it: refused), encoded at most
        1024 bytes. The returned message carries the relay copy when the query asked for
        relays; `SerfNode.respond` sends both.
        """
        self.answerable.check(query, now=now)
        out = self._response(query, QueryResponse(query.ltime, query.id, self.name, 0, payload))
        self.answerable.claim(query)
        return out

    def _response(self, query: Query, msg: QueryResponse) -> SerfDirect:
        reply_to = query.reply_to
        if reply_to is None:
            raise QueryRespondError("query carries no usable reply address")
        data = encode_message(msg)
        if len(data) > QUERY_RESPONSE_SIZE_LIMIT:
            raise QueryRespondError(
                "failed to respond to key query: response exceeds limit of "
                f"{QUERY_RESPONSE_SIZE_LIMIT} bytes"
            )
        if query.relay_factor == 0:
            return SerfDirect(reply_to, data)
        relay = encode_message(Relay(query.addr, query.port, query.source_node, data))
        if len(relay) > QUERY_RESPONSE_SIZE_LIMIT:
            raise QueryRespondError(
                "failed to respond to key query: relayed response exceeds limit of "
                f"{QUERY_RESPONSE_SIZE_LIMIT} bytes"
            )
        return SerfDirect(reply_to, data, query.relay_factor, relay)

    def originate(
        self,
        name: str,
        payload: bytes,
        params: QueryParams,
        *,
        addr: tuple[str, int],
        timeout: float,
        now: float,
        members: int = 1,
    ) -> int:
        """Send a new query (Serf's `Query`); returns its Lamport time, the handle in events.

        `addr` is where answers come back (our advertise address), `timeout` the resolved
        timeout in seconds, `members` the live members now (bounds what is collected).
        Raises ValueError as Serf refuses (too large, bad name). Handles the query locally
        too (self-ack, self-delivery) and queues its broadcast.
        """
        if not is_text(name):
            raise ValueError("query name is not valid Unicode text")
        reply_ip = ipaddress.ip_address(addr[0]).packed
        query = Query(
            ltime=self.query_clock.time(),
            id=self._next_query_id(reply_ip + (addr[1] & 0xFFFF).to_bytes(2, "big")),
            name=name,
            addr=reply_ip,
            port=addr[1],
            source_node=self.name,
            payload=bytes(payload),
            filters=encode_filters(params.filter_nodes, params.filter_tags),
            flags=QueryFlag.ACK if params.request_ack else 0,
            relay_factor=params.relay_factor,
            timeout_ns=round(timeout * 1e9),
        )
        raw = encode_message(query)
        if len(raw) > QUERY_SIZE_LIMIT:
            raise ValueError(f"query exceeds limit of {QUERY_SIZE_LIMIT} bytes")
        self.originated.open(query, params, now=now, timeout=timeout, members=members)
        # Handled like a received one: it witnesses the clock (the next query gets the
        # next time), queues the broadcast, acks and delivers to ourselves if we match.
        self._pending_events.extend(self._on_query(query, raw, now))
        return query.ltime

    def expire(self, *, now: float) -> list[SerfEvent]:
        """`QueryFinished` for our queries whose deadline has come."""
        return self.originated.expire(now=now)

    def next_deadline(self) -> float | None:
        """When `expire` next has something to do."""
        return self.originated.next_deadline()

    def _next_query_id(self, reply_to: bytes) -> int:
        # Serf draws a random int31; only (LTime, ID) pairs must differ, and LTime already
        # does between our queries. A counter mixed with our name keeps this pure. The
        # reply address goes in too: the two claimants of a name conflict share the name
        # and vote at once with the same LTime, and equal ids would make each peer answer
        # only whichever vote reached it first (seen in the simulator).
        self._query_seq = (self._query_seq + 1) & U32
        base = zlib.crc32(self.name.encode() + reply_to)
        return (base + self._query_seq * 2654435761) & 0x7FFF_FFFF

    def restore_clocks(self, member: int, event: int, query: int) -> None:
        """Resume from a snapshot's `clock:`, `event-clock:` and `query-clock:` values.

        The clocks witness them, and user events and queries up to those times are from
        before the restart: they are dropped from now on, so none is delivered twice.
        """
        self.member_clock.witness(member)
        self.event_clock.witness(event)
        self.query_clock.witness(query)
        self.event_min_time = min(event + 1, _U64)
        self.query_min_time = min(query + 1, _U64)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Tags used to evaluate query tag filters (keep in step with our Meta)."""
        self.tags = dict(tags)

    def note_member(self, name: str, status: MemberStatus) -> None:
        """Tell the layer what memberlist decided about `name` (for push/pull `LeftMembers`)."""
        if name_problem(name) is not None:
            return  # the core drops such names before reporting them; never store one
        self._forget_left(name)
        if status == "left":
            self._left[name] = None
            self._left_bytes += _name_cost(name)
            while len(self._left) > MAX_NAMES or self._left_bytes > MAX_NAME_TABLE_BYTES:
                self._forget_left(next(iter(self._left)))
        if name not in self._status:
            self._accept_status(name, 0, "join")

    # --- inbound ----------------------------------------------------------------------------

    def claim_user_message(
        self, data: bytes, *, now: float | None = None
    ) -> list[SerfEvent] | None:
        """A memberlist user message if it is Serf's: the Serf events it produced, else None.

        A message is Serf's only when it is framed as Serf frames the messages it sends
        as user messages: the type byte of a join or leave intent, a user event, a query,
        a query response or a relay, followed by a body that decodes as that message
        (Go's decoder, trailing bytes ignored). Anything else, `msgpack.packb(5)`
        included, is the application's: None, and nothing is counted. `now` as for
        `handle_user_message`.
        """
        if not data or data[0] not in _USER_MESSAGE_TYPES:
            return None
        try:
            msg = decode_message(data)
        except SerfDecodeError:
            return None
        return self._handle(msg, data, now)

    def handle_user_message(self, data: bytes, *, now: float | None = None) -> list[SerfEvent]:
        """Process one memberlist user message as Serf's; returns the Serf events it produced.

        `now` dates received queries (their answer deadline) and responses to ours; the
        driver always passes it.

        Bad or unknown messages are dropped and counted in `drops`; never raises.
        Re-gossip and acks are queued for `take_outgoing()`.
        """
        try:
            msg = decode_message(data)
        except SerfDecodeError as exc:
            self.drops["unknown_type" if "unknown Serf" in str(exc) else "malformed"] += 1
            return []
        return self._handle(msg, data, now)

    def _handle(self, msg: SerfMessage, data: bytes, now: float | None) -> list[SerfEvent]:
        problem = _message_problem(msg)
        if problem is not None:
            self.drops[problem] += 1
            return []
        events: list[SerfEvent] = []
        if isinstance(msg, Join):
            if self._on_join(msg):
                events.append(JoinIntentReceived(msg.node, msg.ltime))
                self._outgoing.append(SerfBroadcast(bytes(data)))
        elif isinstance(msg, Leave):
            if self._on_leave(msg):
                events.append(LeaveIntentReceived(msg.node, msg.ltime, msg.prune))
                self._outgoing.append(SerfBroadcast(bytes(data)))
        elif isinstance(msg, UserEvent):
            if self._record_event(msg):
                events.append(UserEventReceived(msg.name, msg.payload, msg.ltime, msg.cc))
                self._outgoing.append(SerfBroadcast(bytes(data)))
        elif isinstance(msg, Query):
            events.extend(self._on_query(msg, data, now))
        elif isinstance(msg, QueryResponse):
            if now is None:
                self.drops["query_response_unknown"] += 1
            else:
                events.extend(self.originated.on_response(msg, now=now))
        elif isinstance(msg, Relay):
            self._on_relay(msg)
        else:  # push/pull state has no business inside a user message
            self.drops["unexpected_type"] += 1
        return events

    def local_state(self, join: bool) -> bytes:
        """Push/pull user state: 0x02 + messagePushPull with the 512-slot event ring."""
        del join  # Serf sends the same state either way
        state = PushPull(
            ltime=self.member_clock.time(),
            status_ltimes={name: ltime for name, (ltime, _kind) in self._status.items()},
            left_members=tuple(self._left),
            event_ltime=self.event_clock.time(),
            events=tuple(self._events),
            query_ltime=self.query_clock.time(),
        )
        return encode_message(state)

    def merge_remote_state(self, data: bytes, join: bool) -> None:
        """Merge a peer's push/pull user state. Never raises; bad state is counted in `drops`.

        Replayed user events are queued for `take_events()` (they are not re-gossiped).
        """
        if not data:
            return  # a pure memberlist peer: UserStateLen 0
        if data[0] != SerfMessageType.PUSH_PULL:
            self.drops["state_type"] += 1
            return
        try:
            msg = decode_message(data)
        except SerfDecodeError:
            self.drops["state_malformed"] += 1
            return
        assert isinstance(msg, PushPull)
        if msg.ltime > 0:
            self.member_clock.witness(msg.ltime - 1)
        if msg.event_ltime > 0:
            self.event_clock.witness(msg.event_ltime - 1)
        if join and self.ignore_old_events:
            # Serf's Join(ignoreOld): what happened before we joined is not replayed.
            self.event_min_time = max(self.event_min_time, msg.event_ltime)
        if msg.query_ltime > 0:
            self.query_clock.witness(msg.query_ltime - 1)
        # Entry by entry: one bad name (a Go peer keeps any bytes) spares the rest.
        left = set(msg.left_members)
        for name in msg.left_members:
            if self._state_name_ok(name):
                # Go adds 1 in uint64 and may wrap; we stay at the top, which msgpack encodes.
                self._on_leave(Leave(min(msg.status_ltimes.get(name, 0) + 1, _U64), name))
        for name, ltime in msg.status_ltimes.items():
            if name not in left and self._state_name_ok(name):
                self._on_join(Join(ltime, name))
        skip_before = self.event_min_time if join and self.ignore_old_events else 0
        for slot in msg.events:
            if slot is None or slot.ltime < skip_before:
                continue  # a join without replay: not news, and not a drop either
            for entry in slot.events:
                if not is_text(entry.name):
                    self.drops["state_event_name_not_utf8"] += 1
                    continue
                replay = UserEvent(slot.ltime, entry.name, entry.payload)
                if self._record_event(replay):
                    self._pending_events.append(
                        UserEventReceived(entry.name, entry.payload, slot.ltime, False)
                    )

    def take_outgoing(self) -> list[SerfOutgoing]:
        """Messages to send since the last call: re-gossip and refutations, query acks, relays."""
        out, self._outgoing = self._outgoing, []
        return out

    def take_events(self) -> list[SerfEvent]:
        """Events produced outside `handle_user_message` (user events replayed by a merge)."""
        out, self._pending_events = self._pending_events, []
        return out

    def status_ltime(self, name: str) -> int | None:
        """The member-clock time of the last intent accepted about `name`, if any."""
        entry = self._status.get(name)
        return None if entry is None else entry[0]

    # --- internals ---------------------------------------------------------------------------

    def _state_name_ok(self, name: str) -> bool:
        problem = name_problem(name)
        if problem is None:
            return True
        self.drops[f"state_{problem.value}"] += 1
        return False

    def _forget_left(self, name: str) -> None:
        if name in self._left:
            del self._left[name]
            self._left_bytes -= _name_cost(name)

    def _accept_status(self, name: str, ltime: int, kind: Literal["join", "leave"]) -> None:
        if self._status.pop(name, None) is None:
            self._status_bytes += _name_cost(name)
        self._status[name] = (ltime, kind)
        while len(self._status) > MAX_NAMES or self._status_bytes > MAX_NAME_TABLE_BYTES:
            oldest = next(iter(self._status))
            if oldest == self.name:  # never forget ourselves: move to the end
                self._status[oldest] = self._status.pop(oldest)
                continue
            del self._status[oldest]
            self._status_bytes -= _name_cost(oldest)

    def _on_join(self, msg: Join) -> bool:
        """Serf's handleNodeJoinIntent; True if new (to be re-gossiped)."""
        self.member_clock.witness(msg.ltime)
        known = self._status.get(msg.node)
        if known is not None and msg.ltime <= known[0]:
            return False
        self._accept_status(msg.node, msg.ltime, "join")
        return True

    def _on_leave(self, msg: Leave) -> bool:
        """Serf's handleNodeLeaveIntent; True if new (to be re-gossiped)."""
        self.member_clock.witness(msg.ltime)
        known = self._status.get(msg.node)
        if known is not None and msg.ltime <= known[0]:
            return False
        if msg.node == self.name and not self.leaving:
            # An old leave of ours is still going round: refute it with a fresh join intent.
            self._outgoing.append(SerfBroadcast(self.join_intent()))
            return False
        self._accept_status(msg.node, msg.ltime, "leave")
        return True

    def _record_event(self, msg: UserEvent) -> bool:
        """Serf's handleUserEvent dedup; True if the event is new."""
        self.event_clock.witness(msg.ltime)
        if msg.ltime < self.event_min_time:
            self.drops["event_before_restart"] += 1
            return False
        now = self.event_clock.time()
        if now > EVENT_BUFFER and msg.ltime < now - EVENT_BUFFER:
            self.drops["event_too_old"] += 1
            return False
        idx = msg.ltime % EVENT_BUFFER
        slot = self._events[idx]
        entry = UserEventEntry(msg.name, msg.payload)
        size = _entry_size(entry)
        if slot is not None and slot.ltime == msg.ltime:
            if entry in slot.events:
                return False
            if len(slot.events) >= MAX_PER_SLOT:
                self.drops["event_slot_full"] += 1
                return False
            if self._event_bytes + size > MAX_EVENT_BYTES:
                self.drops["event_ring_full"] += 1
                return False
            self._events[idx] = UserEvents(msg.ltime, (*slot.events, entry))
        else:
            freed = 0 if slot is None else sum(_entry_size(e) for e in slot.events)
            if self._event_bytes - freed + size > MAX_EVENT_BYTES:
                self.drops["event_ring_full"] += 1
                return False
            self._event_bytes -= freed
            self._events[idx] = UserEvents(msg.ltime, (entry,))
        self._event_bytes += size
        self.last_event_ltime = max(self.last_event_ltime, msg.ltime)
        return True

    def _on_query(self, query: Query, raw: bytes, now: float | None) -> list[SerfEvent]:
        """Serf's handleQuery: dedup, re-gossip, filter, automatic ack."""
        self.query_clock.witness(query.ltime)
        if query.ltime < self.query_min_time:
            self.drops["query_before_restart"] += 1
            return []
        current = self.query_clock.time()
        if current > EVENT_BUFFER and query.ltime < current - EVENT_BUFFER:
            self.drops["query_too_old"] += 1
            return []
        idx = query.ltime % EVENT_BUFFER
        slot = self._queries[idx]
        if slot is not None and slot[0] == query.ltime:
            if query.id in slot[1]:
                return []
            if len(slot[1]) >= MAX_PER_SLOT:
                self.drops["query_slot_full"] += 1
                return []
            slot[1].add(query.id)
        else:
            self._queries[idx] = (query.ltime, {query.id})
        if not query.flags & QueryFlag.NO_BROADCAST:
            self._outgoing.append(SerfBroadcast(bytes(raw)))
        if not self._filters_match(query.filters or ()):
            return []
        self.last_query_ltime = max(self.last_query_ltime, query.ltime)
        reply_to = query.reply_to
        if reply_to is None:
            self.drops["query_reply_addr"] += 1
            return []
        if query.flags & QueryFlag.ACK:
            ack = QueryResponse(query.ltime, query.id, self.name, QueryFlag.ACK)
            try:
                self._outgoing.append(self._response(query, ack))
            except QueryRespondError:
                self.drops["query_ack_size"] += 1
        if query.name.startswith(INTERNAL_PREFIX):
            response, events = self._internal_answer(query)
            if response is not None:
                self._outgoing.append(response)
            return events
        deadline = self.answerable.add(query, now=now)
        return [QueryReceived(query, deadline)]

    def _internal_answer(self, query: Query) -> tuple[SerfDirect | None, list[SerfEvent]]:
        """Our answer to an internal query, if it takes one (`_serf_ping` takes the ack),
        and `KeyringChanged` when a key command changed our keyring."""
        op = KEY_QUERY_NAMES.get(query.name)
        if op is not None:
            answer = answer_key_query(op, query.payload, self.keyring)
            response = self._key_response(query, answer)
            if response is None:
                self.drops["key_response_size"] += 1
            changed: list[SerfEvent] = []
            if answer.result and op is not KeyOp.LIST and self.keyring is not None:
                changed.append(KeyringChanged(self.keyring.keys))
            return response, changed
        if query.name == CONFLICT_QUERY:
            payload = answer_conflict(query.payload, self.name, self._member_view)
            if payload is None:
                return None, []
            try:
                reply = QueryResponse(query.ltime, query.id, self.name, 0, payload)
                return self._response(query, reply), []
            except QueryRespondError:
                self.drops["conflict_response_size"] += 1
        return None, []

    def _member_view(self, name: str) -> ConflictMember | None:
        return None if self.member_view is None else self.member_view(name)

    def _key_response(self, query: Query, answer: KeyAnswer) -> SerfDirect | None:
        keys = answer.keys
        total = 0 if keys is None else len(keys)
        message = answer.message
        while True:
            payload = key_response_payload(keys, message, answer.primary, answer.result)
            try:
                response = QueryResponse(query.ltime, query.id, self.name, 0, payload)
                return self._response(query, response)
            except QueryRespondError:
                if not keys:
                    return None
                keys = keys[:-1]  # Go truncates the list until the response fits
                message = f"truncated key list response, showing first {len(keys)} of {total} keys"

    def _filters_match(self, filters: tuple[bytes, ...] | tuple[()]) -> bool:
        for raw in filters:
            if not raw:
                self.drops["query_filter"] += 1
                return False
            try:
                body = msgpack.unpackb(raw[1:], raw=True, strict_map_key=False)
            except (ValueError, TypeError):
                self.drops["query_filter"] += 1
                return False
            if raw[0] == FILTER_NODE:
                names = body if isinstance(body, list) else []
                if self.name.encode() not in names:
                    return False
            elif raw[0] == FILTER_TAG and isinstance(body, dict):
                tag = body.get(b"Tag", b"")
                expr = body.get(b"Expr", b"")
                if not isinstance(tag, bytes) or not isinstance(expr, bytes):
                    self.drops["query_filter"] += 1
                    return False
                if not self._tag_matches(tag.decode("utf-8", "replace"), expr):
                    return False
            else:
                self.drops["query_filter"] += 1
                return False  # Go: unknown filter type -> not processed
        return True

    def _tag_matches(self, tag: str, expr_raw: bytes) -> bool:
        # Go's regexp.MatchString: RE2 syntax, unanchored, a missing tag matches as "".
        if len(expr_raw) > _MAX_TAG_EXPR:
            self.drops["query_filter_unsupported"] += 1
            return False
        try:
            pattern = _compile_tag_filter(expr_raw)
        except re2.error:
            self.drops["query_filter_bad_regexp"] += 1
            return False
        return pattern.search(self.tags.get(tag, "")) is not None

    def _on_relay(self, relay: Relay) -> None:
        # Serf only relays query responses; refuse to bounce anything else.
        if relay.inner[0] != SerfMessageType.QUERY_RESPONSE:
            self.drops["relay_type"] += 1
            return
        try:
            host = str(ipaddress.ip_address(relay.dest_ip))
        except ValueError:
            self.drops["relay_addr"] += 1
            return
        if not 0 < relay.dest_port <= 0xFFFF:
            self.drops["relay_addr"] += 1
            return
        self._outgoing.append(SerfDirect((host, relay.dest_port), relay.inner))


@functools.lru_cache(maxsize=128)
def _compile_tag_filter(expr: bytes) -> Any:
    """A tag filter, compiled once: an application sends the same filter with many queries."""
    return re2.compile(expr.decode("utf-8", "replace"), _RE2_OPTIONS)


def _entry_size(entry: UserEventEntry) -> int:
    return len(entry.name.encode("utf-8")) + len(entry.payload)


def _name_cost(name: str) -> int:
    return len(name.encode("utf-8")) + _NAME_OVERHEAD


def _message_problem(msg: SerfMessage) -> str | None:
    """The drop label if `msg` carries a value we would keep but could not encode again.

    Intents name a member (kept in the status map): the member-name rule. A user event's
    name is kept in the event ring: it must be text. Queries and responses are not kept
    (only their ids), and are passed on as received.
    """
    if isinstance(msg, Join | Leave):
        problem = name_problem(msg.node)
        return None if problem is None else problem.value
    if isinstance(msg, UserEvent) and not is_text(msg.name):
        return "event_name_not_utf8"
    return None
