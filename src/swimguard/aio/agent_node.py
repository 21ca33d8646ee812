"""How the `Agent` builds its node: a `SerfNode` with `serf_compat`, else the factory's node."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.driver import DrivenNode
from swimguard.config import Config
from swimguard.protocol.api import NodeBuilder, build_protocol_node
from swimguard.protocol.hooks import forward_hooks
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.serf.node import SerfNode
from swimguard.wire.encryption import Keyring

__all__ = ["build_node", "leave_would_reach_anyone"]


class _MetaHooks:
    """The hooks handed to the node: our metadata at start, the application's for the rest.

    Every other hook is the application's own method (`forward_hooks`), so the node's
    per-protocol `isinstance` checks see exactly what the application implements.
    """

    def __init__(self, meta: bytes, user: object | None) -> None:
        self._meta = meta
        self._user = user
        forward_hooks(self, user)

    def node_meta(self, limit: int) -> bytes:
        """Tags/meta given to the Agent, else the application's hook."""
        if self._meta:
            return self._meta
        user_meta = getattr(self._user, "node_meta", None)
        return bytes(user_meta(limit)) if callable(user_meta) else b""


def build_node(
    config: Config,
    *,
    name: str,
    advertise: Address,
    rng: random.Random,
    now: float,
    meta: bytes,
    hooks: object | None,
    keyring: Keyring | None,
    label: bytes,
    serf_tags: Mapping[str, str] | None,
    serf_compat: bool,
    factory: NodeBuilder | None,
    options: AgentConfig | None = None,
) -> DrivenNode:
    """The node an agent drives; `meta` (if any) is what it announces at start.

    `options` brings the Serf status times and coalescing periods of a `SerfNode`."""
    kwargs: dict[str, Any] = {
        "name": name,
        "advertise": advertise,
        "rng": rng,
        "now": now,
        "hooks": _MetaHooks(meta, hooks),
        "keyring": keyring,
        "label": label,
    }
    node_factory = factory or build_protocol_node
    if serf_compat:
        return SerfNode(
            config,
            tags=serf_tags,
            node_factory=node_factory,
            status_times=options.serf_status_times if options else None,
            coalesce=options.serf_coalesce if options else None,
            **kwargs,
        )
    return node_factory(config, **kwargs)


def leave_would_reach_anyone(node: DrivenNode) -> bool:
    """Whether a graceful leave would tell anyone: we are alive and know another live member."""
    me = node.local_member
    if me.state is not MemberState.ALIVE:
        return False  # left already
    live = (MemberState.ALIVE, MemberState.SUSPECT)
    return any(m.state in live and m.name != me.name for m in node.members())
