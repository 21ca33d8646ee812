"""What the RPC server needs from an agent (`RpcBackend`), and the error it reports."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from swimguard.rpc.members import RpcMember

__all__ = ["BackendError", "KeyCommand", "KeyResult", "QueryItemKind", "RpcBackend"]


class QueryItemKind(enum.StrEnum):
    """`Type` of a query record."""

    ACK = "ack"
    RESPONSE = "response"
    DONE = "done"


class KeyCommand(enum.StrEnum):
    INSTALL = "install-key"
    USE = "use-key"
    REMOVE = "remove-key"
    LIST = "list-keys"


@dataclasses.dataclass(frozen=True, slots=True)
class KeyResult:
    """What a key command reports (Serf's KeyResponse and its error text)."""

    keys: Mapping[str, int]
    messages: Mapping[str, str]
    num_nodes: int
    num_resp: int
    num_err: int
    error: str


class BackendError(Exception):
    """A command failed; its text is the `Error` string the client gets."""


class RpcBackend(Protocol):
    """The agent as the RPC server sees it; `AgentBackend` adapts `swimguard.aio.Agent`."""

    @property
    def name(self) -> str: ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    def members(self) -> list[RpcMember]: ...

    async def join(self, addresses: Sequence[str], *, replay: bool) -> int:
        """Join through `addresses`; BackendError (with how many answered: 0) if none did."""
        ...

    async def leave(self) -> None:
        """Leave gracefully; the agent shuts down afterwards (BackendError if it cannot)."""
        ...

    def user_event(self, name: str, payload: bytes, *, coalesce: bool) -> int:
        """Gossip a user event; its Lamport time. BackendError if refused."""
        ...

    async def set_tags(self, tags: Mapping[str, str]) -> None:
        """Replace our tags and gossip them; BackendError if too large."""
        ...

    def stats(self) -> dict[str, dict[str, str]]: ...

    def query(
        self,
        name: str,
        payload: bytes,
        *,
        filter_nodes: Sequence[str],
        filter_tags: Mapping[str, str],
        request_ack: bool,
        relay_factor: int,
        timeout: float | None,
    ) -> AsyncIterator[tuple[QueryItemKind, str, bytes | None]]:
        """Send a query; (kind, from, payload) per ack/response until its deadline.

        BackendError (Serf's text) if refused before sending.
        """
        ...

    async def key_command(self, command: KeyCommand, key: str) -> KeyResult:
        """Run a cluster-wide key command (Serf's key manager)."""
        ...

    def coordinate(self, node: str) -> Mapping[str, object] | None:
        """`node`'s network coordinate as Serf encodes it, or None if unknown/disabled."""
        ...

    def force_leave(self, node: str, *, prune: bool) -> None:
        """Gossip a leave intent about `node` (Serf's force-leave); BackendError if refused."""
        ...

    def respond(self, query: object, payload: bytes) -> None:
        """Answer a query a stream record carried; BackendError if too large."""
        ...

    def explain(self, name: str) -> Mapping[str, object] | None:
        """Ours: why `name` is in its state (`Explanation.to_dict()`); None if unknown,
        BackendError if this agent cannot explain."""
        ...
