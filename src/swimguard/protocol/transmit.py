"""Encoding and sending: datagrams with piggybacked broadcasts, stream framing, gossip rounds.

memberlist `sendMsg` / `rawSendMsgPacket` / `getBroadcasts` / `gossip()`.

`Transmitter` owns what leaves the node: the outgoing effects the driver drains, the
member and user broadcast queues, the codec settings (compression, keyring, label)
and the gossip timer. It reads the member table (to pick gossip peers and to size
retransmissions) and never changes it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Final

from swimguard.config import Config
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.dissemination import BroadcastQueue
from swimguard.protocol.hooks import BroadcastHook
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address, Datagram, Outgoing
from swimguard.protocol.stats import ProtocolStats
from swimguard.protocol.table import MemberRecord, MemberTable
from swimguard.protocol.timers import GOSSIP_TICK, Timer
from swimguard.wire.compound import MAX_PARTS_GO_022
from swimguard.wire.encryption import Keyring
from swimguard.wire.packet import Message, UserData, encode_message, encode_packet, make_compound
from swimguard.wire.stream import StreamDecoder, StreamMessage, encode_stream_message, frame_stream

__all__ = [
    "COMPOUND_HEADER_OVERHEAD",
    "COMPOUND_OVERHEAD",
    "ENCRYPT_OVERHEAD",
    "MAX_COMPOUND_PARTS",
    "USER_MSG_OVERHEAD",
    "Transmitter",
]

COMPOUND_HEADER_OVERHEAD: Final = 2
COMPOUND_OVERHEAD: Final = 2
USER_MSG_OVERHEAD: Final = 1
# memberlist 0.2.2 computes the length table size as `parts * 2` in one byte, so a
# compound of 128+ parts is misread there: never build one that large.
MAX_COMPOUND_PARTS: Final = MAX_PARTS_GO_022
# Go's encryptOverhead: version byte + nonce + tag (+ max padding for version 0).
ENCRYPT_OVERHEAD: Final = {0: 1 + 12 + 16 + 16, 1: 1 + 12 + 16}

_ALIVE, _SUSPECT, _DEAD = MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD


class Transmitter:
    """Turns messages into `Datagram` effects, queues broadcasts and runs gossip rounds."""

    def __init__(
        self,
        config: Config,
        *,
        stats: ProtocolStats,
        name: str,
        table: MemberTable,
        rng: random.Random,
        deadlines: Deadlines[Timer],
        keyring: Keyring | None,
        label: bytes,
        compress: bool,
        encryption_version: int,
        broadcast_hook: BroadcastHook | None,
        now: float,
    ) -> None:
        self._config = config
        self._stats = stats
        self._name = name
        self._table = table
        self._rng = rng
        self._deadlines = deadlines
        self.keyring = keyring
        """Decrypts what we receive."""
        self._out_keyring = keyring if config.gossip_verify_outgoing else None
        self.label = label
        self._compress = compress
        self._enc_version = encryption_version
        self.budget = config.udp_buffer_size - (
            ENCRYPT_OVERHEAD[encryption_version] if self._out_keyring is not None else 0
        )
        """Bytes one packet may hold before encryption."""
        self._broadcast_hook = broadcast_hook
        self._out: list[Outgoing] = []
        self.member_q = BroadcastQueue(config.retransmit_mult)
        self.user_q = BroadcastQueue(config.retransmit_mult)
        # Gossip rounds sleep while there is nothing to send (`_wake_gossip`); the
        # random phase spreads simulated nodes started together. Disabled gossip is
        # never "idle", so it is never woken.
        self.gossip_anchor = now + config.gossip_interval * (0.5 + rng.random() / 2)
        self._gossip_idle = config.gossip_interval > 0 and config.gossip_nodes > 0

    def take_outgoing(self) -> list[Outgoing]:
        """Effects to perform, in order."""
        out, self._out = self._out, []
        return out

    def emit(self, effect: Outgoing) -> None:
        """Queue one effect (a stream operation) for the driver."""
        self._out.append(effect)

    def gossip_tick(self, *, now: float) -> None:
        """One gossip round (the `GossipTick` timer)."""
        cfg = self._config
        if not self.member_q and not self.user_q and self._broadcast_hook is None:
            # Nothing to say: sleep until something is queued (`_wake_gossip`) instead of
            # waking GossipInterval-ly for nothing; ticks stay on the same cadence.
            self._gossip_idle = True
            return
        self._deadlines.set(GOSSIP_TICK, now + cfg.gossip_interval)
        self._stats.gossip_rounds += 1
        me = self._name
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
        limit = self.budget - COMPOUND_HEADER_OVERHEAD
        for peer in peers:
            msgs = self._get_broadcasts(COMPOUND_OVERHEAD, limit, MAX_COMPOUND_PARTS)
            if not msgs:
                return
            payload = msgs[0] if len(msgs) == 1 else make_compound(msgs)
            self.send_raw(peer.address, payload, peer.reads_crc)

    def _get_broadcasts(self, overhead: int, limit: int, max_count: int) -> list[bytes]:
        n = len(self._table)
        msgs = self.member_q.get_broadcasts(overhead, limit, n, max_count)
        used = sum(map(len, msgs)) + overhead * len(msgs)
        avail = limit - used
        if avail <= overhead + USER_MSG_OVERHEAD or len(msgs) >= max_count:
            return msgs
        if len(self.user_q):
            user = self.user_q.get_broadcasts(overhead, avail, n, max_count - len(msgs))
            msgs.extend(user)
            avail -= sum(map(len, user)) + overhead * len(user)
        hook = self._broadcast_hook
        if hook is not None and avail > overhead + USER_MSG_OVERHEAD and len(msgs) < max_count:
            cost = overhead + USER_MSG_OVERHEAD
            for data in hook.get_broadcasts(cost, avail):
                if len(msgs) >= max_count:
                    break
                if not data or len(data) + cost > avail:
                    continue  # empty or over budget: a misbehaving hook cannot break the packet
                avail -= len(data) + cost
                msgs.append(encode_message(UserData(bytes(data))))
        return msgs

    def broadcast_member(
        self,
        name: str,
        msg: Message,
        on_finished: Callable[[], None] | None = None,
        *,
        now: float,
    ) -> None:
        """Queue news about member `name` (replacing older news about it)."""
        self.member_q.queue(encode_message(msg), name=name, on_finished=on_finished)
        if self._gossip_idle:
            self._wake_gossip(now=now)

    def broadcast_user(self, data: bytes, key: str | None, *, now: float) -> None:
        """Queue a user broadcast (`Node.broadcast`); the oldest go beyond the limit."""
        msg = encode_message(UserData(data))
        if len(msg) + COMPOUND_OVERHEAD + COMPOUND_HEADER_OVERHEAD > self.budget:
            framing = COMPOUND_OVERHEAD + COMPOUND_HEADER_OVERHEAD + len(msg) - len(data)
            room = self.budget - framing
            raise ValueError(
                f"broadcast of {len(data)} bytes cannot fit in one packet (at most {room} bytes"
                " with this config's udp_buffer_size, label and encryption)"
            )
        self.user_q.queue(msg, name=key)
        if self._gossip_idle:
            self._wake_gossip(now=now)

    def _wake_gossip(self, *, now: float) -> None:
        """Re-arm the idle gossip timer at the next tick of its original cadence."""
        self._gossip_idle = False
        interval = self._config.gossip_interval
        anchor = self.gossip_anchor
        ticks = math.ceil((now - anchor) / interval) if now > anchor else 0
        self._deadlines.set(GOSSIP_TICK, anchor + ticks * interval)

    def send_msg(self, to: Address, msg: bytes) -> None:
        """Send `msg` with piggybacked broadcasts (memberlist `sendMsg`)."""
        avail = self.budget - len(msg) - COMPOUND_HEADER_OVERHEAD
        extra = self._get_broadcasts(COMPOUND_OVERHEAD, avail, MAX_COMPOUND_PARTS - 1)
        payload = make_compound([msg, *extra]) if extra else msg
        # Like Go, the sendMsg path looks the peer up by address and finds nothing: no CRC.
        self.send_raw(to, payload, False)

    def send_raw(self, to: Address, payload: bytes, crc: bool) -> None:
        """Send `payload` as it is (no piggybacking)."""
        data = encode_packet(
            payload,
            compress=self._compress,
            crc=crc,
            keyring=self._out_keyring,
            encryption_version=self._enc_version,
            label=self.label,
        )
        self._out.append(Datagram(to, data))

    def crc_for_address(self, to: Address) -> bool:
        """Whether the member at `to`, if known, reads the CRC envelope."""
        rec = self._table.by_addr.get(to)
        return rec is not None and rec.reads_crc

    def frame(self, msg: StreamMessage | bytes) -> bytes:
        """`msg` (or a message already encoded) framed for a stream."""
        return frame_stream(
            msg if isinstance(msg, bytes) else encode_stream_message(msg),
            compress=self._compress,
            keyring=self._out_keyring,
            encryption_version=self._enc_version,
            label=self.label,
        )

    def decoder(self) -> StreamDecoder:
        """A decoder for one stream we read."""
        return StreamDecoder(
            keyring=self.keyring,
            label=self.label,
            verify_incoming=self._config.gossip_verify_incoming,
            max_bytes=self._config.max_stream_bytes,
        )
