"""Encoding and sending: datagrams with piggybacked broadcasts, stream framing, gossip rounds.

memberlist `sendMsg` / `rawSendMsgPacket` / `getBroadcasts` / `gossip()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from swimguard.protocol.base import (
    ALIVE,
    COMPOUND_HEADER_OVERHEAD,
    COMPOUND_OVERHEAD,
    DEAD,
    MAX_COMPOUND_PARTS,
    SUSPECT,
    USER_MSG_OVERHEAD,
    NodeBase,
)
from swimguard.protocol.outgoing import Address, Datagram
from swimguard.protocol.table import MemberRecord
from swimguard.protocol.timers import GOSSIP_TICK
from swimguard.wire.packet import Message, UserData, encode_message, encode_packet, make_compound
from swimguard.wire.stream import StreamDecoder, StreamMessage, encode_stream_message, frame_stream


class Transmitter(NodeBase):
    """Turns messages into `Datagram` effects and runs gossip rounds."""

    def _gossip_tick(self, now: float) -> None:
        cfg = self.config
        if not self._member_q and not self._user_q and self._broadcast_hook is None:
            # Nothing to say: sleep until something is queued (`_wake_gossip`) instead of
            # waking GossipInterval-ly for nothing; ticks stay on the same cadence.
            self._gossip_idle = True
            return
        self._deadlines.set(GOSSIP_TICK, now + cfg.gossip_interval)
        me = self.name
        dead_time = cfg.gossip_to_the_dead_time

        def exclude(r: MemberRecord) -> bool:
            if r.name == me:
                return True
            state = r.state
            if state is ALIVE or state is SUSPECT:
                return False
            if state is DEAD:
                return now - r.state_change > dead_time
            return True

        peers = self._table.k_random(cfg.gossip_nodes, self._rng, exclude)
        limit = self._budget - COMPOUND_HEADER_OVERHEAD
        for peer in peers:
            msgs = self._get_broadcasts(COMPOUND_OVERHEAD, limit, MAX_COMPOUND_PARTS)
            if not msgs:
                return
            payload = msgs[0] if len(msgs) == 1 else make_compound(msgs)
            self._send_raw(peer.address, payload, peer.reads_crc)

    def _get_broadcasts(self, overhead: int, limit: int, max_count: int) -> list[bytes]:
        n = len(self._table)
        msgs = self._member_q.get_broadcasts(overhead, limit, n, max_count)
        used = sum(map(len, msgs)) + overhead * len(msgs)
        avail = limit - used
        if avail <= overhead + USER_MSG_OVERHEAD or len(msgs) >= max_count:
            return msgs
        if len(self._user_q):
            user = self._user_q.get_broadcasts(overhead, avail, n, max_count - len(msgs))
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

    def _broadcast_member(
        self,
        name: str,
        msg: Message,
        now: float,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        self._member_q.queue(encode_message(msg), name=name, on_finished=on_finished)
        if self._gossip_idle:
            self._wake_gossip(now)

    def _wake_gossip(self, now: float) -> None:
        """Re-arm the idle gossip timer at the next tick of its original cadence."""
        self._gossip_idle = False
        interval = self.config.gossip_interval
        anchor = self._gossip_anchor
        ticks = math.ceil((now - anchor) / interval) if now > anchor else 0
        self._deadlines.set(GOSSIP_TICK, anchor + ticks * interval)

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
        return rec is not None and rec.reads_crc

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
