"""A tiny fake of the protocol core's Node, for testing the asyncio transport alone.

It follows the driver contract (docs/architecture.md) and does only what a test
scripts: user messages become datagrams/streams to the given address, inbound
bytes are recorded, and `on_stream_data` lets a test reply on a stream.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from swimguard.config import Config
from swimguard.protocol.events import Event, JoinCompleted, LeaveCompleted, MemberJoined
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
    """Records every input; emits only what the test scripts.

    Every FakeNode built is kept in `built` by name: an agent built with
    `node_factory=FakeNode` hands the node to nobody else, and this is how the
    application that brings a factory can reach the node it made.
    """

    built: ClassVar[dict[str, FakeNode]] = {}

    def __init__(
        self,
        config: Config,
        *,
        name: str,
        advertise: Address,
        rng: random.Random,
        now: float,
        hooks: object | None = None,
        keyring: object | None = None,
        label: bytes = b"",
    ) -> None:
        FakeNode.built[name] = self
        self.config = config
        self.name = name
        self.advertise = advertise
        self.inputs: list[tuple[Any, ...]] = []
        self.outgoing: list[Outgoing] = []
        node_meta = getattr(hooks, "node_meta", None)
        self.meta = node_meta(512) if callable(node_meta) else b""
        self.hooks = hooks
        self.others: dict[str, Member] = {}
        self.events: list[Event] = [MemberJoined(self.local_member)]
        self.deadline: float | None = None
        self.join_ok = True
        self.join_answers = True  # False: JoinCompleted only when a test calls finish_join
        self.fail_on_datagram = False
        self.on_stream_data: Callable[[FakeNode, int, bytes], None] | None = None
        self._ids = itertools.count(1)
        self._drops: dict[str, int] = {}

    # -- helpers for tests --
    def of_kind(self, kind: str) -> list[tuple[Any, ...]]:
        return [i for i in self.inputs if i[0] == kind]

    # -- NodeAPI --
    def join(self, seeds: Sequence[Address], *, now: float) -> None:
        self.inputs.append(("join", tuple(seeds), now))
        if self.join_answers:
            self.finish_join(len(seeds) if self.join_ok else 0)

    def finish_join(self, joined: int) -> None:
        errors = () if joined else ("refused",)
        self.events.append(JoinCompleted(joined=joined, errors=errors))

    def leave(self, timeout: float, *, now: float) -> None:
        self.inputs.append(("leave", now, timeout))
        self.events.append(LeaveCompleted(timed_out=False))

    def update_meta(self, meta: bytes, *, now: float) -> None:
        self.inputs.append(("update_meta", meta, now))
        self.meta = meta

    def send_best_effort(self, to: Address, data: bytes, *, now: float) -> None:
        self.inputs.append(("send_best_effort", to, data, now))
        self.outgoing.append(Datagram(to, data))

    def send_reliable(self, to: Address, data: bytes, *, now: float) -> int:
        self.inputs.append(("send_reliable", to, data, now))
        sid = next(self._ids)
        self.outgoing += [StreamOpen(sid, to), StreamSend(sid, data)]
        return sid

    def broadcast(self, data: bytes, key: str | None = None, *, now: float) -> None:
        self.inputs.append(("broadcast", data, now, key))

    def receive_datagram(self, data: bytes, sender: Address, *, now: float) -> None:
        self.inputs.append(("datagram", data, sender, now))
        if self.fail_on_datagram:
            raise RuntimeError("core bug")

    def stream_accepted(self, peer: Address, *, now: float) -> int:
        sid = next(self._ids) + 1000
        self.inputs.append(("stream_accepted", peer, sid, now))
        return sid

    def stream_data(
        self, stream_id: int, data: bytes, *, now: float, max_work: int | None = None
    ) -> bool:
        self.inputs.append(("stream_data", stream_id, data, now))
        if self.on_stream_data is not None:
            self.on_stream_data(self, stream_id, data)
        return False

    def stream_closed(self, stream_id: int, error: str | None = None, *, now: float) -> None:
        self.inputs.append(("stream_closed", stream_id, error, now))

    def report_loop_lag(self, lag: float, *, now: float) -> None:
        self.inputs.append(("lag", lag, now))

    def handle_timeout(self, *, now: float) -> None:
        self.inputs.append(("timeout", now))
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None

    def next_deadline(self) -> float | None:
        return self.deadline

    def take_outgoing(self) -> list[Outgoing]:
        out, self.outgoing = self.outgoing, []
        return out

    def take_events(self) -> list[Event]:
        out, self.events = self.events, []
        return out

    def members(self) -> list[Member]:
        return [self.local_member, *self.others.values()]

    @property
    def local_member(self) -> Member:
        return Member(self.name, self.advertise, 0, MemberState.ALIVE, self.meta)

    @property
    def health_score(self) -> int:
        return 0

    @property
    def drops(self) -> Mapping[str, int]:
        return self._drops


def reply_and_close(reply: bytes) -> Callable[[FakeNode, int, bytes], None]:
    """A stream handler that answers every request with `reply` and closes."""

    def handler(node: FakeNode, stream_id: int, data: bytes) -> None:
        node.outgoing += [StreamSend(stream_id, reply), StreamClose(stream_id)]

    return handler


async def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Poll `predicate` until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
