"""`SerfNode`: a protocol `Node` and the Serf layer combined into one pure node.

It is driven exactly like a `Node` (the `NodeAPI` contract of docs/architecture.md):
inputs take `now`, outputs are drained with `take_outgoing()` / `take_events()`, and
`next_deadline()` names the one moment it next needs `handle_timeout(now)`. A driver
(the asyncio `Agent`, the simulator) needs to know nothing about Serf.

What it adds to the node, all inside one input so that nothing goes back and forth
through the driver:

- Serf messages (memberlist user messages whose first byte is a Serf type) go to the
  Serf layer instead of coming out as `UserMessage`; the layer's events come out of
  `take_events()` in their place, and its re-gossip, query acks and relays go straight
  into the node's queues before the driver drains it.
- Push/pull user state: the layer is the node's state hook (unless the application's
  hooks bring both halves of their own); user events replayed by a merge come out
  where the node's `RemoteState` event was, which is not passed on (the state already
  reached the layer through the hook).
- Intents: our join intent is gossiped when a join reached someone; `leave()` gossips
  our leave intent first and starts the memberlist leave at a deadline a few gossip
  rounds later, so Serf peers show us as left, not failed.
- The layer learns what memberlist decided about each member (for push/pull's left list).
- Network coordinates: every ack we send carries our Vivaldi coordinate, and every
  direct probe's ack (the ping hook) updates it and caches the peer's (`coordinates`).
"""

from __future__ import annotations

import collections
import ipaddress
import random
from collections.abc import Mapping, Sequence
from typing import Any

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI, NodeBuilder, build_protocol_node
from swimguard.protocol.events import (
    Event,
    JoinCompleted,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    NameConflict,
    PingCompleted,
    RemoteState,
    UserMessage,
)
from swimguard.protocol.hooks import forward_hooks
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.outgoing import Address, Outgoing
from swimguard.serf.coalesce import Coalesce, Coalescer
from swimguard.serf.coordinate_exchange import CoordinateExchange
from swimguard.serf.events import (
    JoinIntentReceived,
    LeaveIntentReceived,
    NameConflictResolved,
    QueryAckReceived,
    QueryFinished,
    QueryResponseReceived,
    SerfBroadcast,
    SerfDirect,
    SerfEvent,
)
from swimguard.serf.internal_queries import CONFLICT_QUERY, ConflictVote
from swimguard.serf.layer import SerfLayer
from swimguard.serf.messages import ConflictMember, Query, SerfMemberStatus
from swimguard.serf.query import QueryParams, default_query_timeout
from swimguard.serf.status import (
    MemberReaped,
    SerfMember,
    SerfStatus,
    StatusEvent,
    StatusTable,
    StatusTimes,
)
from swimguard.serf.tags import decode_tags
from swimguard.wire.encryption import Keyring

__all__ = ["SerfNode", "SerfNodeEvent", "leave_intent_wait"]

SerfNodeEvent = Event | SerfEvent | StatusEvent
"""What `SerfNode.take_events()` returns: the node's events, the Serf layer's and the
status table's (`MemberStatusChanged`, `MemberReaped`)."""

_GONE = (MemberState.DEAD, MemberState.LEFT)


def leave_intent_wait(config: Config, timeout: float) -> float:
    """How long our leave intent gossips before the memberlist leave starts.

    A few gossip rounds (at least 0.1 s), but never more than half the leave's `timeout`.
    """
    return min(timeout / 2, max(3 * config.gossip_interval, 0.1))


class _SerfHooks:
    """The hooks handed to the node: Serf's push/pull state and coordinates, the application's
    for the rest (its `notify_ping_complete` still hears every ping).

    Every other hook is the application's own method (`forward_hooks`), so the node's
    per-protocol checks see exactly what the application implements. An application that
    brings both `local_state` and `merge_remote_state` keeps push/pull state to itself.
    """

    def __init__(
        self, serf: SerfLayer, user: object | None, coordinates: CoordinateExchange
    ) -> None:
        own = hasattr(user, "local_state") and hasattr(user, "merge_remote_state")
        self._state: Any = user if own else serf
        self._coordinates = coordinates
        # Serf peers read our coordinate from every ack; an application's own payload wins.
        self._ack_payload: Any = getattr(user, "ack_payload", coordinates.ack_payload)
        self._user_ping_complete: Any = getattr(user, "notify_ping_complete", None)
        forward_hooks(self, user)

    def ack_payload(self) -> bytes:
        payload: bytes = self._ack_payload()
        return payload

    def notify_ping_complete(self, member: Member, rtt: float, payload: bytes) -> None:
        self._coordinates.ping_completed(member.name, rtt, payload)
        if self._user_ping_complete is not None:
            self._user_ping_complete(member, rtt, payload)

    def local_state(self, join: bool) -> bytes:
        state: bytes = self._state.local_state(join)
        return state

    def merge_remote_state(self, data: bytes, join: bool) -> None:
        self._state.merge_remote_state(data, join)


class SerfNode:
    """A member speaking memberlist and enough of Serf for Serf agents to see it properly.

    Built like a `Node` (`config`, `name=`, `advertise=`, `rng=`, `now=`, `hooks=`,
    `keyring=`, `label=`), plus Serf `tags` (used for query filters; our metadata is the
    caller's business) and `node_factory`, which builds the inner node with those same
    keywords (default `swimguard.protocol.Node`). The keyring is shared with the Serf
    layer, so `serf keys` queries change what the node encrypts with. `status_times`:
    how long failed and left members stay listed, how often failed ones are retried
    (Serf's 30 s / 24 h / 24 h by default). `coalesce`: hold member and user events
    as Serf's agent does (`serf.coalesce`); None (the default, as Serf the library)
    delivers each at once.
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
        tags: Mapping[str, str] | None = None,
        node_factory: NodeBuilder | None = None,
        status_times: StatusTimes | None = None,
        coalesce: Coalesce | None = None,
    ) -> None:
        self.config = config
        # Its own stream, seeded from the caller's without drawing from it.
        self.coordinates = CoordinateExchange(
            name, rng=random.Random(hash(rng.getstate()[1])), max_entries=config.max_members
        )
        self.serf = SerfLayer(name, tags=tags, keyring=keyring)
        self.status = StatusTable(status_times, max_members=config.max_members)
        self._coalescer = Coalescer(coalesce) if coalesce is not None else None
        self._released: list[SerfNodeEvent] = []  # coalesced events whose window closed
        self._now = now
        # Who asked for each join still running, in call order (the node reports joins in
        # call order): our reconnect attempts' results are not the caller's business.
        self._join_origins: collections.deque[bool] = collections.deque()
        self.serf.member_view = self._member_view
        self._rng = rng
        # The name conflict vote we run, if any: (query handle, tally).
        self._conflict: tuple[int, ConflictVote] | None = None
        factory = node_factory or build_protocol_node
        self.node: NodeAPI = factory(
            config,
            name=name,
            advertise=advertise,
            rng=rng,
            now=now,
            hooks=_SerfHooks(self.serf, hooks, self.coordinates),
            keyring=keyring,
            label=label,
        )
        self._events: list[SerfNodeEvent] = []
        self._regossip_too_large = 0
        # The memberlist leave waits for our leave intent to go round: (start at, ends by).
        self._leave_at: tuple[float, float] | None = None
        self.status.alive(self.node.local_member, leaving=False, now=now)
        self._pump(now=now)

    # -- Serf inputs -------------------------------------------------------------------

    def user_event(self, name: str, payload: bytes, *, now: float, coalesce: bool = True) -> None:
        """Gossip a Serf user event (ValueError above Serf's 512 bytes of name + payload)."""
        self.node.broadcast(self.serf.user_event(name, payload, coalesce=coalesce), now=now)
        self._pump(now=now)

    def query(self, name: str, payload: bytes, params: QueryParams, *, now: float) -> int:
        """Originate a Serf query; returns its handle (Lamport time) named in its events.

        Acks, responses and the end come out of `take_events()` as `QueryAckReceived`,
        `QueryResponseReceived` and `QueryFinished`. ValueError as Serf refuses it.
        """
        live = self.live_members()
        timeout = params.timeout
        if timeout is None:
            timeout = default_query_timeout(self.config.gossip_interval, live)
        addr = self.node.local_member.addr
        handle = self.serf.originate(
            name, payload, params, addr=addr, timeout=timeout, now=now, members=live
        )
        self._serf_out(self.serf.take_events(), now=now)
        return handle

    def respond(self, query: Query, payload: bytes, *, now: float) -> None:
        """Answer a received query (`QueryRespondError` with Serf's text if refused)."""
        out = self.serf.respond(query, payload, now=now)
        self._send_direct(out, now=now)
        self._pump(now=now)

    def live_members(self) -> int:
        """Memberlist's NumMembers: members not dead or left, ourselves included."""
        return sum(1 for m in self.node.members() if m.state not in _GONE)

    def force_leave(self, name: str, *, prune: bool = False, now: float) -> None:
        """Serf's force-leave: gossip a leave intent about `name` (a failed member becomes
        left; `prune` erases it at once, everywhere). Unknown names are gossiped too, as
        Serf does. ValueError for a name that could not be sent."""
        data, events = self.serf.force_leave(name, prune=prune)
        self._serf_out(events, now=now)
        self.node.broadcast(data, now=now)
        self._pump(now=now)

    def serf_members(self) -> list[SerfMember]:
        """Every member with its Serf status, failed and left ones until reaped."""
        return self.status.members()

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Tags for query filters (the caller gossips the matching metadata)."""
        self.serf.set_tags(tags)

    # -- NodeAPI inputs ------------------------------------------------------------------

    def join(self, seeds: Sequence[Address], *, now: float, replay: bool = True) -> None:
        """memberlist join, then our join intent. `replay=False` (serf agent's default,
        `-replay` off) ignores the user events the cluster saw before we joined."""
        if not replay:
            self.serf.ignore_old_events = True
        self._join_origins.append(False)
        self.node.join(seeds, now=now)
        self._pump(now=now)

    def leave(self, timeout: float, *, now: float) -> None:
        """Gossip our leave intent now; the memberlist leave starts at a deadline after it."""
        self.node.broadcast(self.serf.leave_intent(), now=now)
        self.status.leave_intent(self.serf.name, prune=False, now=now)
        self._leave_at = (now + leave_intent_wait(self.config, timeout), now + timeout)
        self._pump(now=now)

    def update_meta(self, meta: bytes, *, now: float) -> None:
        self.node.update_meta(meta, now=now)
        self._note_alive(self.node.local_member, now=now)
        self._pump(now=now)

    def send_best_effort(self, to: Address, data: bytes, *, now: float) -> None:
        self.node.send_best_effort(to, data, now=now)
        self._pump(now=now)

    def send_reliable(self, to: Address, data: bytes, *, now: float) -> int:
        call = self.node.send_reliable(to, data, now=now)
        self._pump(now=now)
        return call

    def broadcast(self, data: bytes, key: str | None = None, *, now: float) -> None:
        self.node.broadcast(data, now=now, key=key)
        self._pump(now=now)

    def receive_datagram(self, data: bytes, sender: Address, *, now: float) -> None:
        self.node.receive_datagram(data, sender, now=now)
        self._pump(now=now)

    def stream_accepted(self, peer: Address, *, now: float) -> int:
        stream_id = self.node.stream_accepted(peer, now=now)
        self._pump(now=now)
        return stream_id

    def stream_data(
        self, stream_id: int, data: bytes, *, now: float, max_work: int | None = None
    ) -> bool:
        pending = self.node.stream_data(stream_id, data, now=now, max_work=max_work)
        self._pump(now=now)
        return pending

    def stream_closed(self, stream_id: int, error: str | None = None, *, now: float) -> None:
        self.node.stream_closed(stream_id, now=now, error=error)
        self._pump(now=now)

    def report_loop_lag(self, lag: float, *, now: float) -> None:
        self.node.report_loop_lag(lag, now=now)
        self._pump(now=now)

    def handle_timeout(self, *, now: float) -> None:
        leave_at = self._leave_at
        if leave_at is not None and now >= leave_at[0]:
            self._leave_at = None
            self.node.leave(now=now, timeout=max(0.0, leave_at[1] - now))
        self.node.handle_timeout(now=now)
        self._pump(now=now)
        finished = self.serf.expire(now=now)
        if finished:
            self._serf_out(finished, now=now)
        if self._coalescer is not None:
            self._released.extend(self._coalescer.flush(now=now))  # type: ignore[arg-type]
        reaped, retry = self.status.expire(now=now, rng=self._rng)
        for member in reaped:
            self.serf.forget_member(member.name)
            self._events.append(MemberReaped(member))
        if retry is not None:
            # Serf's reconnect: a plain memberlist join, no join intent, nobody waits on it.
            self._join_origins.append(True)
            self.node.join([retry], now=now)
            self._pump(now=now)

    # -- NodeAPI outputs -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        candidates = [
            self.node.next_deadline(),
            self.serf.next_deadline(),
            self.status.next_deadline(),
        ]
        if self._coalescer is not None:
            candidates.append(self._coalescer.next_deadline())
        if self._leave_at is not None:
            candidates.append(self._leave_at[0])
        return min((d for d in candidates if d is not None), default=None)

    def take_outgoing(self) -> list[Outgoing]:
        return self.node.take_outgoing()

    def take_events(self) -> list[SerfNodeEvent]:
        events, self._events = self._events, []
        coalescer = self._coalescer
        if coalescer is None:
            return events
        out, self._released = self._released, []
        out.extend(e for e in events if not coalescer.add(e, now=self._now))
        return out

    def members(self) -> list[Member]:
        return self.node.members()

    @property
    def local_member(self) -> Member:
        return self.node.local_member

    @property
    def health_score(self) -> int:
        return self.node.health_score

    @property
    def drops(self) -> Mapping[str, int]:
        """The node's counters, then the Serf layer's prefixed with `serf_`."""
        counts = dict(self.node.drops)
        for reason, n in self.serf.drops.items():
            counts[f"serf_{reason}"] = n
        for reason, n in self.coordinates.drops.items():
            counts[f"serf_{reason}"] = n
        if self._regossip_too_large:
            counts["serf_regossip_too_large"] = self._regossip_too_large
        return counts

    # -- the Serf half of every input ------------------------------------------------------

    def _pump(self, *, now: float) -> None:
        """Route the node's new events through the Serf layer, in order, until quiet.

        What the layer sends (re-gossip, acks) enters the node's queues here, so the
        driver's next `take_outgoing()` already holds it.
        """
        self._now = now
        while True:
            events = self.node.take_events()
            if not events:
                return
            for event in events:
                self._route(event, now=now)

    def _route(self, event: Event, *, now: float) -> None:
        serf = self.serf
        if isinstance(event, RemoteState):
            # The state hook merged it already; only the events it replayed go on.
            self._serf_out(serf.take_events(), now=now)
            return
        if isinstance(event, UserMessage):
            claimed = serf.claim_user_message(event.data, now=now)
            if claimed is not None:  # framed as Serf frames it; anything else is the user's
                self._serf_out(claimed, now=now)
                return
        if isinstance(event, MemberJoined | MemberUpdated | MemberLeft | MemberFailed):
            alive = isinstance(event, MemberJoined | MemberUpdated)
            self.coordinates.note_member(event.member.name, alive=alive, now=now)
        elif isinstance(event, PingCompleted):
            self.coordinates.expire(now=now)  # once per probe: departures age out in time
        if isinstance(event, MemberJoined | MemberUpdated):
            serf.note_member(event.member.name, "alive")
            self._note_alive(event.member, now=now)
        elif isinstance(event, MemberLeft):
            serf.note_member(event.member.name, "left")
            self.status.gone(event.member, left=True, now=now)
        elif isinstance(event, MemberFailed):
            serf.note_member(event.member.name, "failed")
            self.status.gone(event.member, left=False, now=now)
        elif isinstance(event, NameConflict) and event.existing.name == serf.name:
            self._start_conflict_vote(now=now)
        elif isinstance(event, JoinCompleted):
            if self._join_origins and self._join_origins.popleft():
                return  # our reconnect attempt: nobody called join()
            self.serf.ignore_old_events = False
            if event.joined > 0:
                # Serf gossips its join intent once memberlist's join reached someone.
                self.node.broadcast(serf.join_intent(), now=now)
        self._events.append(event)

    def _note_alive(self, member: Member, *, now: float) -> None:
        leaving = self.serf.newest_intent_is_leave(member.name)
        self.status.alive(member, leaving=leaving, now=now)

    def _serf_out(self, events: Sequence[SerfEvent], *, now: float) -> None:
        if self._conflict is not None:
            events = [e for e in events if not self._conflict_event(e)]
        for event in events:
            self._events.append(event)
            if isinstance(event, JoinIntentReceived):
                self.status.join_intent(event.node)
            elif isinstance(event, LeaveIntentReceived):
                change, erased = self.status.leave_intent(event.node, prune=event.prune, now=now)
                if change is not None:
                    self._events.append(change)
                    if change.member.status is SerfStatus.LEFT:
                        # Serf's leftMembers: push/pull names it as left from now on.
                        self.serf.note_member(change.member.name, "left")
                if erased is not None:
                    self.serf.forget_member(erased.name)
                    self._events.append(MemberReaped(erased, forced=True))
        for out in self.serf.take_outgoing():
            if isinstance(out, SerfBroadcast):
                try:
                    self.node.broadcast(out.data, now=now)
                except ValueError:
                    # A peer with a larger UDP buffer sent it; memberlist's queue would
                    # never send it either. Not ours to gossip: count, do not raise.
                    self._regossip_too_large += 1
            elif isinstance(out, SerfDirect):
                self._send_direct(out, now=now)

    def _send_direct(self, out: SerfDirect, *, now: float) -> None:
        if out.to == self.node.local_member.addr:
            # To ourselves (our own query's acks and answers): no round trip through the
            # socket, where a full buffer could lose it.
            self._serf_out(self.serf.handle_user_message(out.data, now=now), now=now)
        else:
            self.node.send_best_effort(out.to, out.data, now=now)
        if out.relay_factor:
            for addr in self._relay_targets(out.relay_factor):
                self.node.send_best_effort(addr, out.relay, now=now)

    # -- name conflicts (Serf's resolveNodeConflict) ---------------------------------------

    def _start_conflict_vote(self, *, now: float) -> None:
        """Another member claims our name: ask everyone where they know it to be."""
        if self._conflict is not None:
            return  # one vote at a time; every alive message of the other member repeats it
        me = self.node.local_member
        addr = _packed(me.addr[0])
        handle = self.query(CONFLICT_QUERY, self.serf.name.encode(), QueryParams(), now=now)
        self._conflict = (handle, ConflictVote(addr, me.addr[1]))

    def _conflict_event(self, event: SerfEvent) -> bool:
        """Count the vote's responses; True if `event` belongs to the vote (not passed on)."""
        if self._conflict is None:
            return False  # the vote ended earlier in the same batch of events
        handle, vote = self._conflict
        if not isinstance(event, QueryAckReceived | QueryResponseReceived | QueryFinished):
            return False
        if event.ltime != handle:
            return False
        if isinstance(event, QueryResponseReceived):
            vote.add(event.payload)
        elif isinstance(event, QueryFinished):
            self._conflict = None
            self._events.append(
                NameConflictResolved(self.serf.name, vote.matching, vote.responses, vote.won)
            )
        return True

    def _member_view(self, name: str) -> ConflictMember | None:
        """Serf's `Member` for `name` from our table (for `_serf_conflict` answers).

        The status table first: like Serf's member map it still holds failed and left
        members memberlist forgot, with their Serf status (leaving included).
        """
        known = self.status.get(name)
        if known is not None:
            return ConflictMember(
                name=known.name,
                addr=_packed(known.addr[0]),
                port=known.addr[1],
                tags=dict(known.tags),
                status=_WIRE_STATUS[known.status],
                protocol=known.protocol,
                delegate=known.delegate,
            )
        # NodeAPI has no lookup by name, the real Node does: a query naming anyone must
        # not cost a snapshot of the whole table.
        find = getattr(self.node, "member", None)
        if callable(find):
            member = find(name)
        else:
            member = next((m for m in self.node.members() if m.name == name), None)
        if not isinstance(member, Member):
            return None
        status = {
            MemberState.LEFT: SerfMemberStatus.LEFT,
            MemberState.DEAD: SerfMemberStatus.FAILED,
        }.get(member.state, SerfMemberStatus.ALIVE)
        vsn = member.vsn.ljust(6, b"\0")  # a peer may have sent fewer versions
        return ConflictMember(
            name=member.name,
            addr=_packed(member.addr[0]),
            port=member.addr[1],
            tags=decode_tags(member.meta),
            status=status,
            protocol=(vsn[0], vsn[1], vsn[2]),
            delegate=(vsn[3], vsn[4], vsn[5]),
        )

    def _relay_targets(self, count: int) -> list[Address]:
        """Serf's relay choice: up to `count` random live members other than us that
        speak memberlist protocol 5 (which forwards relays), only if the cluster has
        more than `count` members."""
        members = self.node.members()
        if len(members) < count + 1:
            return []
        me = self.node.local_member.name
        chosen: dict[str, Address] = {}
        for _ in range(3 * count):
            if len(chosen) >= count:
                break
            m = members[self._rng.randrange(len(members))]
            if m.name == me or m.state in _GONE or len(m.vsn) < 2 or m.vsn[1] < 5:
                continue
            chosen[m.name] = m.addr
        return list(chosen.values())


_WIRE_STATUS = {
    SerfStatus.ALIVE: SerfMemberStatus.ALIVE,
    SerfStatus.LEAVING: SerfMemberStatus.LEAVING,
    SerfStatus.LEFT: SerfMemberStatus.LEFT,
    SerfStatus.FAILED: SerfMemberStatus.FAILED,
}


def _packed(host: str) -> bytes:
    return ipaddress.ip_address(host).packed
