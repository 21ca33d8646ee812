"""`Agent.keys`: Serf's key manager, rotating the encryption keys of the whole cluster.

Each operation is one internal query (`_serf_install-key`, `_serf_use-key`,
`_serf_remove-key`, `_serf_list-keys`) answered by every member, serf agents and swimguard
agents alike (us too: our own answer changes our keyring). The result is what `serf keys`
prints: per-node messages, the counts and Serf's error text (`KeyResponse`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Final

from swimguard.aio.agent_query import AgentQueries, QueryHandle
from swimguard.serf.events import QueryResponseReceived
from swimguard.serf.internal_queries import KeyOp, KeyResponse, KeyTally, key_request
from swimguard.serf.node import SerfNode
from swimguard.serf.query import QueryParams

__all__ = ["AgentKeys", "KeyManager", "KeyResponse"]

_NOT_BASE64: Final = re.compile(r"[^A-Za-z0-9+/=]")

StartQuery = Callable[[str, bytes, QueryParams], QueryHandle]


class KeyManager:
    """Install, use, remove and list keys on every member (Serf's `KeyManager`).

    Keys are raw bytes or base64 text (as `serf keys` takes them). Each call waits until
    every live member answered or the query's default timeout passed; it never raises for
    a member's refusal: read `KeyResponse.error` and `.messages`.
    """

    def __init__(self, start: StartQuery, live_members: Callable[[], int]) -> None:
        self._start = start
        self._live_members = live_members

    async def install(self, key: str | bytes) -> KeyResponse:
        """Add `key` to every keyring (not yet used to encrypt)."""
        return await self._run(KeyOp.INSTALL, key)

    async def use(self, key: str | bytes) -> KeyResponse:
        """Make the installed `key` primary everywhere."""
        return await self._run(KeyOp.USE, key)

    async def remove(self, key: str | bytes) -> KeyResponse:
        """Remove `key` everywhere (refused by each member for its primary key)."""
        return await self._run(KeyOp.REMOVE, key)

    async def list(self) -> KeyResponse:
        """Every key and how many members hold it (`KeyResponse.keys`)."""
        return await self._run(KeyOp.LIST, b"")

    async def _run(self, op: KeyOp, key: str | bytes) -> KeyResponse:
        if isinstance(key, str):
            try:
                raw = _b64decode(key)
            except ValueError as exc:  # as Serf: no query, zero nodes
                return KeyResponse({}, {}, 0, 0, 0, str(exc))
        else:
            raw = bytes(key)
        num_nodes = self._live_members()
        # Serf's default parameters (no ack, default timeout); it stops reading once
        # every member counted at the start has answered: our `expected`.
        handle = self._start(op.query_name, key_request(raw), QueryParams(expected=num_nodes))
        tally = KeyTally(num_nodes)
        async for item in handle:
            if isinstance(item, QueryResponseReceived):
                tally.add(item.from_, item.payload)
        return tally.result()


def _b64decode(text: str) -> bytes:
    """Standard base64, refused with the text Go's decoder gives (`serf keys` shows it)."""
    bad = _NOT_BASE64.search(text)
    try:
        if bad is not None:
            raise binascii.Error
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        offset = bad.start() if bad is not None else max(len(text) - len(text) % 4 - 1, 0)
        raise ValueError(f"illegal base64 data at input byte {offset}") from None


class AgentKeys(AgentQueries):
    """The `Agent`'s `keys` (a `KeyManager` on this agent's queries)."""

    @property
    def keys(self) -> KeyManager:
        """Serf's key manager for the cluster this agent is in (needs `serf_compat`)."""

        def live_members() -> int:
            node, _driver = self._running()
            return node.live_members() if isinstance(node, SerfNode) else 1

        return KeyManager(self._start_query, live_members)
