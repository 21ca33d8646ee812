"""A trivial node that speaks the driver contract, to test the simulator's plumbing alone.

Every second it pings a random known peer (``ping <seq>``) and the peer answers
``ack <seq>``; every acked ping is published as a `UserMessage`. `call_stream(peer)`
opens a stream, sends two chunks and closes; the acceptor publishes what it read on EOF.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from swimguard.protocol.events import Event, LeaveCompleted, UserMessage
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.outgoing import (
    Address,
    Datagram,
    Outgoing,
    StreamClose,
    StreamOpen,
    StreamSend,
)


class FakeNode:
    def __init__(self, name: str, addr: Address, rng: random.Random, *, now: float) -> None:
        self.name = name
        self.addr = addr
        self.rng = rng
        self.peers: list[Address] = []
        self.out: list[Outgoing] = []
        self.events: list[Event] = []
        self.deadline = now + 1.0
        self.seq = 0
        self.lags: list[float] = []
        self.inbound: dict[int, bytes] = {}
        self.closed: list[tuple[int, str | None]] = []
        self.next_stream = 1
        self.leaving = False
        self.received: list[tuple[float, Address, bytes]] = []

    def join(self, seeds: Sequence[Address], *, now: float) -> None:
        for seed in seeds:
            if seed not in self.peers:
                self.peers.append(seed)
            self.out.append(Datagram(seed, b"hello"))

    def leave(self, timeout: float, *, now: float) -> None:
        self.leaving = True
        self.deadline = now + 0.1

    def update_meta(self, meta: bytes, *, now: float) -> None:
        pass

    def receive_datagram(self, data: bytes, sender: Address, *, now: float) -> None:
        self.received.append((now, sender, data))
        if sender not in self.peers:
            self.peers.append(sender)
        if data.startswith(b"ping "):
            self.out.append(Datagram(sender, b"ack " + data[5:]))
        elif data.startswith(b"ack "):
            self.events.append(UserMessage(data))

    def call_stream(self, peer: Address, *, now: float) -> int:
        sid = self.next_stream
        self.next_stream += 1
        self.out += [
            StreamOpen(sid, peer),
            StreamSend(sid, b"part1;"),
            StreamSend(sid, b"part2"),
            StreamClose(sid),
        ]
        return sid

    def stream_accepted(self, peer: Address, *, now: float) -> int:
        sid = 1000 + self.next_stream
        self.next_stream += 1
        self.inbound[sid] = b""
        return sid

    def stream_data(self, stream_id: int, data: bytes, *, now: float) -> None:
        self.inbound[stream_id] += data

    def stream_closed(self, stream_id: int, error: str | None = None, *, now: float) -> None:
        self.closed.append((stream_id, error))
        if stream_id in self.inbound:
            self.events.append(UserMessage(b"stream:" + self.inbound.pop(stream_id)))

    def report_loop_lag(self, lag: float, *, now: float) -> None:
        self.lags.append(lag)

    def handle_timeout(self, *, now: float) -> None:
        if self.leaving:
            self.events.append(LeaveCompleted(timed_out=False))
            self.deadline = now + 1000.0
            return
        if self.peers:
            self.seq += 1
            peer = self.peers[self.rng.randrange(len(self.peers))]
            self.out.append(Datagram(peer, b"ping %d" % self.seq))
        self.deadline = now + 1.0

    def next_deadline(self) -> float | None:
        return self.deadline

    def take_outgoing(self) -> list[Outgoing]:
        out, self.out = self.out, []
        return out

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def members(self) -> list[Member]:
        return [Member(self.name, self.addr, 0, MemberState.ALIVE)]

    @property
    def health_score(self) -> int:
        return 0

    @property
    def drops(self) -> Mapping[str, int]:
        return {}
