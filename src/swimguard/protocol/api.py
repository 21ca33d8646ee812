"""The driver contract of `swimguard.protocol.Node` as a structural type.

Both drivers (asyncio and the simulator) are typed against this documented
contract (docs/architecture.md) rather than against one implementation, so
their unit tests can use small fakes and a contract change shows up as a type
error in both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from swimguard.protocol.events import Event
from swimguard.protocol.members import Member
from swimguard.protocol.outgoing import Address, Outgoing

if TYPE_CHECKING:
    from swimguard.config import Config
    from swimguard.wire.encryption import Keyring

__all__ = ["NodeAPI", "NodeBuilder", "NodeFactory", "build_protocol_node"]


class NodeAPI(Protocol):
    """Inputs take `now=` (seconds, `loop.time()`), keyword-only so a time cannot be passed
    where a payload or timeout is meant; outputs are drained after each input."""

    def join(self, seeds: Sequence[Address], *, now: float) -> None: ...
    def leave(self, timeout: float, *, now: float) -> None: ...
    def update_meta(self, meta: bytes, *, now: float) -> None: ...
    def send_best_effort(self, to: Address, data: bytes, *, now: float) -> None: ...
    def send_reliable(self, to: Address, data: bytes, *, now: float) -> int: ...
    def broadcast(self, data: bytes, key: str | None = None, *, now: float) -> None: ...
    def receive_datagram(self, data: bytes, sender: Address, *, now: float) -> None: ...
    def stream_accepted(self, peer: Address, *, now: float) -> int: ...
    def stream_data(
        self, stream_id: int, data: bytes, *, now: float, max_work: int | None = None
    ) -> bool: ...
    def stream_closed(self, stream_id: int, error: str | None = None, *, now: float) -> None: ...
    def report_loop_lag(self, lag: float, *, now: float) -> None: ...
    def handle_timeout(self, *, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def take_outgoing(self) -> list[Outgoing]: ...
    def take_events(self) -> list[Event]: ...
    def members(self) -> list[Member]: ...

    @property
    def local_member(self) -> Member: ...

    @property
    def health_score(self) -> int: ...

    @property
    def drops(self) -> Mapping[str, int]: ...


class NodeFactory(Protocol):
    """Builds a node: (name, advertise address, seeded rng, now=) -> node.

    The simulator builds every member (and every restart) through one; the config and any
    other options are bound by whoever makes the factory (`swimguard.sim.node_factory`).
    """

    def __call__(
        self, name: str, advertise: Address, rng: random.Random, /, *, now: float
    ) -> NodeAPI: ...


class NodeBuilder(Protocol):
    """Builds the protocol node inside a host that owns the config and the node's options.

    The `Agent` (`node_factory=`) and `SerfNode` (its inner node) build through one; the
    default is `swimguard.protocol.Node` itself. A `NodeFactory` is what a host hands the
    simulator instead: these same options already bound, one call per member.
    """

    def __call__(
        self,
        config: Config,
        /,
        *,
        name: str,
        advertise: Address,
        rng: random.Random,
        now: float,
        hooks: object | None,
        keyring: Keyring | None,
        label: bytes,
    ) -> NodeAPI: ...


def build_protocol_node(config: Config, /, **options: Any) -> NodeAPI:
    """The default `NodeBuilder`: `swimguard.protocol.Node` itself."""
    from swimguard.protocol.node import Node  # late: the core costs imports its hosts may skip

    node: NodeAPI = Node(config, **options)
    return node
