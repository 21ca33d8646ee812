"""memberlist's member-state rules: alive, suspect, dead/left, refutation, merge.

Each rule follows `state.go` (`aliveNode`, `suspectNode`, `deadNode`, `refute`,
`mergeState`); see spec/memberlist-wire.md §12. Lifeguard's dynamic suspicion
timeout is `protocol.suspicion`; it is switched off by `Config.lha_suspicion`.

`Membership` owns the member table (the only writer of member records, through the
table's writers), the running suspicions, our incarnation and the leave in progress.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from swimguard.config import META_MAX_SIZE, Config
from swimguard.protocol.addresses import bytes_to_host, ip_allowed
from swimguard.protocol.awareness import Awareness
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.events import (
    Event,
    LeaveCompleted,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
    NameConflict,
)
from swimguard.protocol.history import (
    DeathStory,
    HealthCause,
    History,
    SuspicionEnd,
    SuspicionSource,
    SuspicionStory,
)
from swimguard.protocol.hooks import AliveHook, ConflictHook
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.names import name_problem
from swimguard.protocol.scaling import suspicion_timeout
from swimguard.protocol.stats import ProtocolStats
from swimguard.protocol.suspicion import Suspicion
from swimguard.protocol.table import MemberRecord, MemberTable, SharedView
from swimguard.protocol.timers import LEAVE_TIMEOUT, SuspicionTimeout, Timer
from swimguard.protocol.transmit import Transmitter
from swimguard.protocol.versions import vsn_is_sane
from swimguard.wire.messages import Alive, Dead, NodeState, PushNodeState, Suspect, maker_for

# Alive(incarnation, node, addr, port, meta, vsn), built once per push/pull member state.
_new_alive = maker_for(Alive)
# Push/pull states as plain ints: compared once per member of a push/pull.
_PUSH_ALIVE: Final = int(NodeState.ALIVE)
_PUSH_SUSPECT: Final = int(NodeState.SUSPECT)
_PUSH_DEAD: Final = int(NodeState.DEAD)
_PUSH_LEFT: Final = int(NodeState.LEFT)


ALIVE, SUSPECT, DEAD, LEFT = (
    MemberState.ALIVE,
    MemberState.SUSPECT,
    MemberState.DEAD,
    MemberState.LEFT,
)
U32: Final = 0xFFFF_FFFF
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Membership:
    """Applies alive/suspect/dead news to the member table."""

    def __init__(
        self,
        config: Config,
        *,
        stats: ProtocolStats,
        name: str,
        addr_bytes: bytes,
        port: int,
        rng: random.Random,
        table: MemberTable,
        deadlines: Deadlines[Timer],
        tx: Transmitter,
        awareness: Awareness,
        history: History,
        events: list[Event],
        drops: Counter[str],
        allowed_nets: tuple[IPNetwork, ...],
        alive_hook: AliveHook | None,
        conflict_hook: ConflictHook | None,
        now: float,
    ) -> None:
        self._config = config
        self._stats = stats
        self._name = name
        self._addr_bytes = addr_bytes
        self._port = port
        self._rng = rng
        self.table = table
        """The member table: read it anywhere, change it only here."""
        self._deadlines = deadlines
        self._tx = tx
        self._awareness = awareness
        self._history = history
        self._events = events
        self._drops = drops
        self._allowed_nets = allowed_nets
        self._alive_hook = alive_hook
        self._conflict_hook = conflict_hook
        self.suspicions: dict[str, Suspicion] = {}
        self._incarnation = 0
        self._left = False
        self._leave_waiting = False
        self._next_refresh = now
        self.refreshes = 0
        """How many slow refreshes we made (`Config.slow_refresh_interval`)."""
        self.incarnation_restarts = 0
        """How often our incarnation passed 0xFFFFFFFF and restarted at 1 (see `_refute`)."""

    @property
    def self_record(self) -> MemberRecord:
        """Our own record."""
        rec = self.table.get(self._name)
        assert rec is not None
        return rec

    @property
    def has_left(self) -> bool:
        """True after `leave()`."""
        return self._left

    def adopt(self, view: SharedView) -> None:
        """Know every member of `view` (records shared until changed, `MemberTable.adopt`)."""
        self.table.adopt(view, self.self_record, self._rng)

    def leave(self, timeout: float, *, now: float) -> None:
        """Broadcast our own death; `LeaveCompleted` once it went out or after `timeout`."""
        if self._left:
            self._events.append(LeaveCompleted(timed_out=False))
            return
        self._left = True
        me = self.self_record
        self._leave_waiting = True
        self.dead_node(Dead(incarnation=me.incarnation, node=self._name, from_=self._name), now=now)
        if not self.any_alive():
            self.leave_done(timed_out=False)
        elif self._leave_waiting and timeout > 0:
            self._deadlines.set(LEAVE_TIMEOUT, now + timeout)

    def leave_timeout(self) -> None:
        """The `LeaveTimeout` timer: stop waiting for the leave broadcast."""
        if self._leave_waiting:
            self.leave_done(timed_out=True)

    def reset_nodes(self, *, now: float) -> None:
        """Purge long-dead members and reshuffle the probe order (memberlist `resetNodes`)."""
        cfg = self._config
        dropped = self.table.reset(
            self._rng, cfg.gossip_to_the_dead_time, cfg.reap_left_nodes, now=now
        )
        for rec in dropped:
            self.suspicions.pop(rec.name, None)

    def postpone(self, lag: float, *, now: float) -> None:
        """Loop lag: running suspicions do not count the time we were frozen."""
        for name, susp in self.suspicions.items():
            susp.start += lag
            self._deadlines.set(SuspicionTimeout(name), max(susp.deadline, now))

    def alive_node(
        self,
        a: Alive,
        *,
        now: float,
        bootstrap: bool = False,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        """memberlist `aliveNode`: news that `a.node` is alive (`bootstrap`: our own, from us)."""
        table = self.table
        rec = table.by_name.get(a.node)
        is_local = a.node == self._name
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
        if rec is None:  # a known name was checked when it was stored
            problem = name_problem(a.node)
            if problem is not None:
                self._drops[problem.value] += 1
                return
            if len(table) >= self._config.max_members:
                self._drops["table_full"] += 1
                return
        meta = a.meta or b""
        if len(meta) > META_MAX_SIZE:  # we could not gossip it again (memberlist's MetaMaxSize)
            self._drops["meta_too_large"] += 1
            return
        vsn = a.vsn
        if not vsn_is_sane(vsn):
            self._drops["bad_vsn"] += 1
            return
        # A Vsn the cluster's members do not all accept would fail every later push/pull
        # through us (memberlist's verifyProtocol): one packet would poison joins. A new
        # member without Vsn is stored with zeros, which no peer accepts.
        if (
            not is_local
            and (rec is None or (vsn and vsn != rec.vsn))
            and not table.vsn_fits(vsn or bytes(6))
        ):
            self._drops["vsn_incompatible"] += 1
            return
        host = bytes_to_host(a.addr)
        if host is None:
            self._drops["bad_address"] += 1
            return
        if self._alive_hook is not None:
            if len(vsn) < 6:
                self._drops["alive_no_vsn"] += 1
                return
            claim = Member(a.node, (host, a.port), a.incarnation, ALIVE, meta, vsn)
            if self._alive_hook.notify_alive(claim) is not None:
                self._drops["alive_vetoed"] += 1
                return
        if (rec is None or rec.addr_bytes != a.addr) and not ip_allowed(self._allowed_nets, host):
            self._drops["cidr_blocked"] += 1  # a new member or a new address outside the CIDRs
            return
        updates_address = False
        if rec is None:
            rec = table.add_new(a.node, host, a.addr, a.port, meta, vsn, self._rng)
        elif rec.addr_bytes != a.addr or rec.port != a.port:
            reclaim = self._config.dead_node_reclaim_time
            can_reclaim = reclaim > 0 and now - rec.state_change > reclaim
            if rec.state is LEFT or (rec.state is DEAD and can_reclaim):
                updates_address = True
            else:
                existing = rec.snapshot()
                other = Member(a.node, (host, a.port), a.incarnation, ALIVE, meta, vsn or bytes(6))
                self._drops["name_conflict"] += 1
                self._events.append(NameConflict(existing=existing, other=other))
                if self._conflict_hook is not None:
                    self._conflict_hook.notify_conflict(existing, other)
                return
        if not is_local and not updates_address and a.incarnation <= rec.incarnation:
            return
        if is_local and a.incarnation < rec.incarnation:
            return
        refuted = self._cancel_suspicion(a.node, SuspicionEnd.REFUTED, now=now)
        old_state = rec.state
        old_inc = rec.incarnation
        old_meta = rec.meta
        if not bootstrap and is_local:
            if a.incarnation == rec.incarnation and meta == rec.meta and vsn == rec.vsn:
                return
            rec = self._refute(rec, a.incarnation, now=now)
        else:
            self._tx.broadcast_member(a.node, a, on_finished, now=now)
            rec = table.set_alive(
                rec,
                incarnation=a.incarnation,
                meta=meta,
                vsn=vsn,
                host=host,
                addr_bytes=a.addr,
                port=a.port,
                now=now,
            )
        if old_state is not ALIVE or rec.incarnation != old_inc:
            self._history.state_changed(a.node, ALIVE, rec.incarnation, now=now)
        stats = self._stats
        stats.msg_alive += 1
        if refuted and old_state is SUSPECT:
            stats.suspicions_refuted += 1
        if old_state is DEAD or old_state is LEFT:
            self._events.append(MemberJoined(rec.snapshot()))
        elif old_meta != rec.meta or old_state is SUSPECT:
            # memberlist is silent when a suspect refutes; without an event here a
            # consumer that saw MemberSuspected would believe it suspect forever.
            self._events.append(MemberUpdated(rec.snapshot()))

    def suspect_node(
        self, s: Suspect, *, now: float, source: SuspicionSource = SuspicionSource.GOSSIP
    ) -> None:
        """memberlist `suspectNode`: an accusation, or a confirmation of a running suspicion.

        `source` says how the accusation reached us, for `explain`."""
        rec = self.table.get(s.node)
        if rec is None or s.incarnation < rec.incarnation:
            return
        if s.from_ != self._name:  # kept as a confirmation and gossiped again
            problem = name_problem(s.from_)
            if problem is not None:
                self._drops[problem.value] += 1
                return
        susp = self.suspicions.get(s.node)
        if susp is not None:
            if susp.confirm(s.from_):
                hist = self._history.get(s.node)
                if hist is not None and hist.suspicion is not None:
                    hist.suspicion.confirm(s.from_, now=now)
                self._tx.broadcast_member(s.node, s, now=now)
                # Already overdue (memberlist fires at once): due now, never in the past,
                # so a driver does not mistake the gap for loop lag.
                self._deadlines.set(SuspicionTimeout(s.node), max(susp.deadline, now))
            return
        if rec.state is not ALIVE:
            return
        if s.node == self._name:
            self._refute(rec, s.incarnation, now=now)
            return
        self._tx.broadcast_member(s.node, s, now=now)
        cfg = self._config
        rec = self.table.set_state(rec, SUSPECT, s.incarnation, now=now)
        n = len(self.table)
        self._stats.msg_suspect += 1
        self._stats.suspicions_started += 1
        k = cfg.suspicion_mult - 2
        if n - 2 < k or not cfg.lha_suspicion:
            k = 0
        min_ = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval)
        multiplier = 1
        if cfg.health_scaled_suspicion:
            # Our own slowness (not the suspect's) is what a high score means: wait longer.
            min_ = self._awareness.scale_timeout(min_)
            multiplier = self._awareness.score + 1
        max_ = cfg.suspicion_max_timeout_mult * min_ if cfg.lha_suspicion else min_
        susp = Suspicion(s.from_, k, min_, max_, now=now)
        self.suspicions[s.node] = susp
        hist = self._history.of(s.node)
        if hist is not None:
            hist.suspicion = SuspicionStory(
                s.from_, source, s.incarnation, now, n, multiplier, k, min_, max_
            )
        self._history.state_changed(s.node, SUSPECT, s.incarnation, now=now)
        self._deadlines.set(SuspicionTimeout(s.node), susp.deadline)
        self._events.append(MemberSuspected(rec.snapshot()))

    def suspicion_expired(self, name: str, *, now: float) -> None:
        """The `SuspicionTimeout` timer: a suspect not refuted in time is dead."""
        susp = self.suspicions.pop(name, None)
        rec = self.table.get(name)
        if susp is not None and rec is not None and rec.state is SUSPECT:
            self._stats.suspicions_confirmed += 1
            if susp.k > 0 and susp.n < susp.k:  # Lifeguard wanted more confirmations
                self._stats.degraded_timeout += 1
        else:
            return
        self._end_story(name, SuspicionEnd.EXPIRED, now=now)
        dead = Dead(incarnation=rec.incarnation, node=name, from_=self._name)
        self.dead_node(dead, now=now, expired_after=susp.timeout)

    def _end_story(self, name: str, how: SuspicionEnd, *, now: float) -> None:
        hist = self._history.get(name)
        if hist is not None and hist.suspicion is not None:
            hist.suspicion.end(how, now=now)

    def _cancel_suspicion(self, name: str, how: SuspicionEnd, *, now: float) -> bool:
        if self.suspicions.pop(name, None) is not None:
            self._deadlines.cancel(SuspicionTimeout(name))
            self._end_story(name, how, now=now)
            return True
        return False

    def dead_node(self, d: Dead, *, now: float, expired_after: float | None = None) -> None:
        """memberlist `deadNode`: `d.node` failed, or left (`from_` is itself)."""
        rec = self.table.get(d.node)
        if rec is None or d.incarnation < rec.incarnation:
            return
        if d.from_ != self._name:  # gossiped again
            problem = name_problem(d.from_)
            if problem is not None:
                self._drops[problem.value] += 1
                return
        self._cancel_suspicion(d.node, SuspicionEnd.DEAD_NEWS, now=now)
        if rec.dead_or_left:
            return
        if d.node == self._name:
            if not self._left:
                self._refute(rec, d.incarnation, now=now)
                return
            self._tx.broadcast_member(d.node, d, self._leave_broadcast_sent, now=now)
        else:
            self._tx.broadcast_member(d.node, d, now=now)
        state = LEFT if d.node == d.from_ else DEAD
        rec = self.table.set_state(rec, state, d.incarnation, now=now)
        hist = self._history.of(d.node)
        if hist is not None:
            hist.death = DeathStory(state, d.from_, d.incarnation, now, expired_after)
        self._history.state_changed(d.node, state, d.incarnation, now=now)
        snap = rec.snapshot()
        self._stats.msg_dead += 1
        self._events.append(MemberLeft(snap) if rec.state is LEFT else MemberFailed(snap))

    def _refute(self, rec: MemberRecord, accused: int, *, now: float) -> MemberRecord:
        if accused >= U32:
            # Nothing outbids the top of the range: every peer (memberlist compares plain
            # uint32) ignores an alive at or below what it holds, so it will fail us. Only a
            # forged message gets here (refutations climb one step at a time). Restart low:
            # once peers reap our dead record, our next alive re-adds us as a new member
            # (an alive at 0 never would: memberlist creates unknown members at 0), and we
            # can refute again afterwards, which a member stuck at the top never could.
            self._incarnation = U32
            inc = self.next_incarnation()
        else:
            inc = self.next_incarnation()
            if accused >= inc:
                inc = self._skip_incarnation(accused - inc + 1)
        self._stats.refutations += 1
        if self._config.lha_probe:
            self._awareness.apply_delta(1, cause=HealthCause.REFUTATION, now=now)
        return self._announce_self(rec, inc, now=now)

    def maybe_refresh(self, *, now: float) -> None:
        """Slow refresh (swimguard extension, see `Config.slow_refresh_interval`)."""
        cfg = self._config
        if (
            self._awareness.score < cfg.slow_refresh_min_score
            or now < self._next_refresh
            or cfg.slow_refresh_interval <= 0
            or self._left
        ):
            return
        rec = self.table.get(self._name)
        if rec is None or rec.state is not ALIVE:
            return
        self.refreshes += 1
        self._announce_self(rec, self.next_incarnation(), now=now)

    def _announce_self(self, rec: MemberRecord, inc: int, *, now: float) -> MemberRecord:
        rec = self.table.set_incarnation(rec, inc)
        self._next_refresh = now + self._config.slow_refresh_interval  # a refutation counts
        self._tx.broadcast_member(rec.name, self.own_alive(inc, rec.meta), now=now)
        return rec

    def own_alive(self, incarnation: int, meta: bytes) -> Alive:
        """Our alive message (our record's address and Vsn never change: see `alive_node`)."""
        return Alive(
            incarnation=incarnation,
            node=self._name,
            addr=self._addr_bytes,
            port=self._port,
            meta=meta or None,
            vsn=self._config.vsn,
        )

    def next_incarnation(self) -> int:
        """Our next incarnation (restarting at 1 past the top)."""
        if self._incarnation >= U32:  # past the top: start again at 1, never 0 (`_refute`)
            self.incarnation_restarts += 1
            self._incarnation = 0
        self._incarnation += 1
        return self._incarnation

    def _skip_incarnation(self, offset: int) -> int:
        # Callers keep the sum within uint32 (`_refute` handles the top itself).
        self._incarnation = min(self._incarnation + offset, U32)
        return self._incarnation

    def merge_state(self, states: Sequence[PushNodeState], *, now: float) -> None:
        """memberlist `mergeState`: apply a verified push/pull's member states."""
        me = self._name
        alive, suspect, dead, left = _PUSH_ALIVE, _PUSH_SUSPECT, _PUSH_DEAD, _PUSH_LEFT
        for st in states:
            state = st.state
            if state == alive:
                # alive_node's first test, before building its message: stale news of
                # a known member (nearly every state of a push/pull) changes nothing.
                rec = self.table.by_name.get(st.name)
                if (
                    rec is not None
                    and st.incarnation <= rec.incarnation
                    and st.port == rec.port
                    and st.addr == rec.addr_bytes
                    and st.name != me
                ):
                    continue
                alive_msg = _new_alive(st.incarnation, st.name, st.addr, st.port, st.meta, st.vsn)
                self.alive_node(alive_msg, now=now)
            elif state == left:
                gone = Dead(incarnation=st.incarnation, node=st.name, from_=st.name)
                self.dead_node(gone, now=now)
            elif state in (suspect, dead):
                # A remote "dead" only makes us suspect (we verify ourselves).
                accused = Suspect(incarnation=st.incarnation, node=st.name, from_=me)
                self.suspect_node(accused, now=now, source=SuspicionSource.PUSH_PULL)
            else:
                self._drops["bad_state"] += 1

    def any_alive(self) -> bool:
        """Whether any other member is alive or suspect."""
        return any(not r.dead_or_left and r.name != self._name for r in self.table.order)

    def _leave_broadcast_sent(self) -> None:
        if self._leave_waiting:
            self.leave_done(timed_out=False)

    def leave_done(self, *, timed_out: bool) -> None:
        """The leave broadcast went out (or timed out): `LeaveCompleted`."""
        self._leave_waiting = False
        self._deadlines.cancel(LEAVE_TIMEOUT)
        self._events.append(LeaveCompleted(timed_out=timed_out))
