"""Failure detection: probe rounds, indirect probes with nacks, TCP fallback, Lifeguard awareness.

memberlist `probe()` / `probeNode` / `handlePing` / `handleIndirectPing` /
`handleAck` / `handleNack`, spec/memberlist-wire.md §13. A probe: direct ping
(with the buddy-system suspect when the target is suspect), after ProbeTimeout
`IndirectChecks` indirect pings (nack requested from protocol >= 4 relays) and a
TCP ping (protocol >= 3), and at the end of the awareness-scaled probe interval
a suspicion unless some ack came. Awareness deltas as in memberlist.

`Prober` owns the probe in progress, the indirect pings we relay for others and our
ping sequence numbers; it suspects through `Membership` and opens the TCP ping
through `Streams`.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Final

from swimguard.config import Config
from swimguard.protocol.addresses import bytes_to_host
from swimguard.protocol.awareness import Awareness
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.events import Event, PingCompleted
from swimguard.protocol.history import (
    HealthCause,
    History,
    ProbeKind,
    ProbeResult,
    SuspicionSource,
)
from swimguard.protocol.hooks import PingHook
from swimguard.protocol.members import MemberState
from swimguard.protocol.membership import Membership
from swimguard.protocol.outgoing import Address
from swimguard.protocol.stats import ProtocolStats
from swimguard.protocol.streams import Streams
from swimguard.protocol.table import MemberRecord, MemberTable
from swimguard.protocol.timers import (
    PROBE_INDIRECT,
    PROBE_TICK,
    PROBE_TIMEOUT,
    RelayTimeout,
    StreamTimeout,
    Timer,
)
from swimguard.protocol.transmit import Transmitter
from swimguard.protocol.versions import trusts_message_ports
from swimguard.wire.messages import AckResp, IndirectPingReq, NackResp, Ping, Suspect
from swimguard.wire.packet import encode_message, make_compound

U32: Final = 0xFFFF_FFFF
ALIVE = MemberState.ALIVE


@dataclasses.dataclass(slots=True)
class ProbeState:
    """One probe cycle (memberlist `probeNode`)."""

    seq: int
    target: str
    incarnation: int
    start: float
    direct_deadline: float
    deadline: float
    indirect: bool = False
    relays: int = 0
    expected_nacks: int = 0
    nacks: int = 0
    tcp_stream: int | None = None
    tcp_tried: bool = False
    tcp_ok: bool = False


# A relay nacks after this fraction of its probe timeout (the Lifeguard paper's rule), not
# after all of it (memberlist's code). The requester sends its indirect pings one probe
# timeout into its probe and gives up one probe interval in; with LAN timing (0.5 s of 1 s) a
# nack sent after a whole probe timeout lands just after the requester stopped counting, so
# a healthy requester scored every nack as missed (+3 for one real failure) and stretched
# its probes and suspicions. At 80 % the nack has 20 % of the timeout for its trip back.
NACK_FRACTION: Final = 0.8


@dataclasses.dataclass(slots=True)
class Relay:
    """An indirect ping we run for `origin` (memberlist `handleIndirectPing`)."""

    origin: Address
    origin_seq: int
    nack: bool
    expires: float
    """When we stop waiting for the target's ack (our probe timeout after the request)."""
    nacked: bool = False


class Prober:
    """Runs probe cycles and answers/relays other members' probes."""

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
        membership: Membership,
        streams: Streams,
        awareness: Awareness,
        history: History,
        events: list[Event],
        drops: Counter[str],
        ping_hook: PingHook | None,
    ) -> None:
        self._config = config
        self._stats = stats
        self._name = name
        self._addr_bytes = addr_bytes
        self._port = port
        self._rng = rng
        self._table = table
        self._deadlines = deadlines
        self._tx = tx
        self._membership = membership
        self._streams = streams
        self._awareness = awareness
        self._history = history
        self._events = events
        self._drops = drops
        self._ping_hook = ping_hook
        self.probe: ProbeState | None = None
        """The probe in progress."""
        self.relays: dict[int, Relay] = {}
        """Indirect pings we relay, by our sequence number."""
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & U32
        return self._seq

    def postpone(self, lag: float, *, now: float) -> None:
        """Loop lag: the probe in progress does not count the time we were frozen.

        Deadlines are never moved into the past: a timer armed behind `now` would make
        the driver report the gap as lag again. The TCP ping follows its probe.
        """
        probe = self.probe
        if probe is None:
            return
        probe.direct_deadline = max(probe.direct_deadline + lag, now)
        probe.deadline = max(probe.deadline + lag, now)
        if not probe.indirect:
            self._deadlines.set(PROBE_INDIRECT, probe.direct_deadline)
        self._deadlines.set(PROBE_TIMEOUT, probe.deadline)
        if probe.tcp_stream is not None:
            self._deadlines.set(StreamTimeout(probe.tcp_stream), probe.deadline)

    def own_ping(self, seq: int, target: str) -> Ping:
        """Our ping of `target` (direct, relayed for another member, or over TCP)."""
        return Ping(
            seq_no=seq,
            node=target,
            source_addr=self._addr_bytes,
            source_node=self._name,
            source_port=self._port,
        )

    def _probe_interval(self) -> float:
        cfg = self._config
        if cfg.lha_probe or cfg.loop_lag_health:
            return self._awareness.scale_timeout(cfg.probe_interval)
        return cfg.probe_interval

    def probe_tick(self, *, now: float) -> None:
        """The `ProbeTick` timer: probe the next member unless a probe is running."""
        if self.probe is not None:
            return  # the running probe schedules the next tick when it ends
        target = self._next_probe_target(now=now)
        if target is None:
            self._deadlines.set(PROBE_TICK, now + self._config.probe_interval)
            return
        self._start_probe(target, now=now)

    def _next_probe_target(self, *, now: float) -> MemberRecord | None:
        table = self._table
        checks = 0
        while checks < len(table.order):
            if table.probe_index >= len(table.order):
                self._membership.reset_nodes(now=now)
                table.probe_index = 0
                checks += 1
                continue
            rec = table.order[table.probe_index]
            table.probe_index += 1
            if rec.name == self._name or rec.dead_or_left:
                checks += 1
                continue
            return rec
        return None

    def _start_probe(self, rec: MemberRecord, *, now: float) -> None:
        cfg = self._config
        seq = self._next_seq()
        interval = self._probe_interval()
        if interval > cfg.probe_interval:
            self._stats.degraded_probe += 1
        probe = ProbeState(
            seq=seq,
            target=rec.name,
            incarnation=rec.incarnation,
            start=now,
            direct_deadline=now + cfg.probe_timeout,
            deadline=now + interval,
        )
        self.probe = probe
        self._deadlines.cancel(PROBE_TICK)
        ping = self.own_ping(seq, rec.name)
        if rec.state is ALIVE or not cfg.buddy_system:
            self._tx.send_msg(rec.address, encode_message(ping))
        else:
            # Buddy system: the suspect rides with the ping so the target can refute at once.
            suspect = Suspect(incarnation=rec.incarnation, node=rec.name, from_=self._name)
            payload = make_compound([encode_message(ping), encode_message(suspect)])
            self._tx.send_raw(rec.address, payload, rec.reads_crc)
        self._deadlines.set(PROBE_INDIRECT, probe.direct_deadline)
        self._deadlines.set(PROBE_TIMEOUT, probe.deadline)

    def probe_indirect(self, *, now: float) -> None:
        """The `ProbeIndirect` timer: no direct ack; indirect pings and the TCP ping."""
        probe = self.probe
        if probe is None or probe.indirect:
            return
        probe.indirect = True
        cfg = self._config
        target = self._table.get(probe.target)
        if target is None:
            return
        self._history.probed(target.name, ProbeResult(ProbeKind.DIRECT, False, now, None))
        me = self._name
        peers = self._table.k_random(
            cfg.indirect_checks,
            self._rng,
            lambda r: r.name == me or r.name == probe.target or r.state is not ALIVE,
        )
        probe.relays = len(peers)
        for peer in peers:
            nack = peer.answers_nacks
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
                source_port=self._port,
            )
            self._tx.send_msg(peer.address, encode_message(req))
        if not cfg.disable_tcp_pings and target.answers_tcp_ping:
            ping = self.own_ping(probe.seq, target.name)
            deadline = max(probe.deadline, now)
            probe.tcp_tried = True
            probe.tcp_stream = self._streams.open_tcp_ping(
                target.address, ping, deadline, self._tcp_acked
            )

    def _tcp_acked(self, seq: int, now: float) -> bool:
        probe = self.probe
        if probe is None or probe.seq != seq:
            return False
        probe.tcp_ok = True
        probe.tcp_stream = None
        result = ProbeResult(ProbeKind.TCP, True, now, now - probe.start)
        self._history.probed(probe.target, result)
        return True

    def _probe_acked(self, probe: ProbeState, payload: bytes | None, *, now: float) -> None:
        # After the direct stage an ack may still be the direct one, late; it has the same
        # sequence number, so it counts as the indirect stage's (as memberlist counts it).
        kind = ProbeKind.INDIRECT if probe.indirect else ProbeKind.DIRECT
        self._history.probed(probe.target, ProbeResult(
            kind, True, now, now - probe.start, probe.relays, probe.expected_nacks, probe.nacks
        ))
        if not probe.indirect:
            rec = self._table.get(probe.target)
            if rec is not None:
                member = rec.snapshot()
                rtt = now - probe.start
                data = payload or b""
                self._events.append(PingCompleted(member=member, rtt=rtt, payload=data))
                if self._ping_hook is not None:
                    self._ping_hook.notify_ping_complete(member, rtt, data)
        self._finish_probe(probe, now=now, success=True)

    def probe_timeout(self, *, now: float) -> None:
        """The `ProbeTimeout` timer: the probe failed unless the TCP ping was acked."""
        probe = self.probe
        if probe is None:
            return
        if probe.tcp_ok and probe.indirect:
            # Only TCP got through: UDP to (or from) the target is broken, a gray failure
            # that `explain` should show, though the probe counts as a success.
            self._history.probed(probe.target, ProbeResult(
                ProbeKind.INDIRECT, False, now, None,
                probe.relays, probe.expected_nacks, probe.nacks,
            ))
        self._finish_probe(probe, now=now, success=probe.tcp_ok)

    def _finish_probe(self, probe: ProbeState, *, now: float, success: bool) -> None:
        cfg = self._config
        self.probe = None
        self._deadlines.cancel(PROBE_INDIRECT)
        self._deadlines.cancel(PROBE_TIMEOUT)
        if probe.tcp_stream is not None:
            self._streams.close_if_open(probe.tcp_stream)
        self._deadlines.set(PROBE_TICK, max(probe.start + cfg.probe_interval, now))
        self._stats.probe_node.observe(now - probe.start)
        if success:
            if cfg.lha_probe:
                self._awareness.apply_delta(-1, cause=HealthCause.PROBE_OK, now=now)
            return
        self._stats.probe_failed += 1
        # Without an indirect stage (probe_timeout == probe_interval) the direct one failed.
        kind = ProbeKind.INDIRECT if probe.indirect else ProbeKind.DIRECT
        self._history.probed(probe.target, ProbeResult(
            kind, False, now, None, probe.relays, probe.expected_nacks, probe.nacks
        ))
        if probe.tcp_tried:
            self._history.probed(probe.target, ProbeResult(ProbeKind.TCP, False, now, None))
        if cfg.lha_probe:
            awareness = self._awareness
            if probe.expected_nacks > 0:
                missed = max(0, probe.expected_nacks - probe.nacks)
                awareness.apply_delta(missed, cause=HealthCause.MISSED_NACKS, now=now)
            else:
                awareness.apply_delta(1, cause=HealthCause.PROBE_FAILED, now=now)
        self._membership.suspect_node(
            Suspect(incarnation=probe.incarnation, node=probe.target, from_=self._name),
            now=now,
            source=SuspicionSource.PROBE,
        )

    def handle_ping(self, ping: Ping, sender: Address) -> None:
        """memberlist `handlePing`: ack a ping meant for us."""
        if ping.node and ping.node != self._name:
            self._drops["ping_other_node"] += 1
            return
        payload = self._ping_hook.ack_payload() if self._ping_hook is not None else None
        to = self._reply_address(ping.source_addr, ping.source_port, sender)
        if to is None:
            return
        self._tx.send_msg(to, encode_message(AckResp(seq_no=ping.seq_no, payload=payload)))

    def _reply_address(self, addr: bytes, port: int, sender: Address) -> Address | None:
        if addr and port > 0:
            host = bytes_to_host(addr)
            if host is None:
                self._drops["bad_address"] += 1
                return None
            return (host, port)
        return sender

    def handle_indirect_ping(self, ind: IndirectPingReq, sender: Address, *, now: float) -> None:
        """memberlist `handleIndirectPing`: ping the target for the requester."""
        port = ind.port
        if not trusts_message_ports(self._config.protocol_version) or port == 0:
            port = self._port
        host = bytes_to_host(ind.target)
        origin = self._reply_address(ind.source_addr, ind.source_port, sender)
        if host is None or origin is None:
            if host is None:
                self._drops["bad_address"] += 1
            return
        seq = self._next_seq()
        timeout = self._config.probe_timeout
        self.relays[seq] = Relay(
            origin=origin, origin_seq=ind.seq_no, nack=ind.nack, expires=now + timeout
        )
        first = now + (NACK_FRACTION * timeout if ind.nack else timeout)
        self._deadlines.set(RelayTimeout(seq), first)
        ping = self.own_ping(seq, ind.node)
        self._tx.send_msg((host, port), encode_message(ping))

    def relay_timeout(self, seq: int) -> None:
        """The `RelayTimeout` timer: nack if asked to (at `NACK_FRACTION` of the timeout),
        then keep relaying a late ack until the whole timeout is over."""
        relay = self.relays.get(seq)
        if relay is None:
            return
        if relay.nack and not relay.nacked:
            relay.nacked = True
            self._tx.send_msg(relay.origin, encode_message(NackResp(seq_no=relay.origin_seq)))
            self._deadlines.set(RelayTimeout(seq), relay.expires)
            return
        del self.relays[seq]

    def handle_ack(self, ack: AckResp, *, now: float) -> None:
        """memberlist `handleAck`: completes our probe or a relayed ping."""
        probe = self.probe
        if probe is not None and probe.seq == ack.seq_no:
            self._probe_acked(probe, ack.payload, now=now)
            return
        relay = self.relays.pop(ack.seq_no, None)
        if relay is not None:
            self._deadlines.cancel(RelayTimeout(ack.seq_no))
            self._tx.send_msg(relay.origin, encode_message(AckResp(seq_no=relay.origin_seq)))
            return
        self._drops["late_ack"] += 1

    def handle_nack(self, nack: NackResp) -> None:
        """memberlist `handleNack`: a relay reports the target silent."""
        probe = self.probe
        if probe is not None and probe.seq == nack.seq_no:
            probe.nacks += 1
        else:
            self._drops["late_nack"] += 1
