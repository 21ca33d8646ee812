"""`Agent(node_factory=)`: the `NodeBuilder` a host may supply, with and without Serf."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from test_agent_cluster import close_all, cluster

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.protocol.api import NodeAPI, build_protocol_node
from swimguard.protocol.outgoing import Address
from swimguard.wire.encryption import Keyring

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class WrappingBuilder:
    """Builds the real core and remembers what it was asked for; its nodes are proxies, so
    the agent cannot tell them from its own core (as a third-party core would be)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

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
    ) -> NodeAPI:
        self.calls.append({"config": config, "name": name, "label": label})
        inner = build_protocol_node(
            config,
            name=name,
            advertise=advertise,
            rng=rng,
            now=now,
            hooks=hooks,
            keyring=keyring,
            label=label,
        )
        return _Proxy(inner)  # type: ignore[return-value]  # structurally a NodeAPI


class _Proxy:
    def __init__(self, inner: NodeAPI) -> None:
        self._inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


@pytest.mark.parametrize("serf_compat", [True, False])
def test_agents_built_by_a_node_builder_form_a_cluster(serf_compat: bool) -> None:
    async def body() -> None:
        builder = WrappingBuilder()
        agents = [
            Agent(
                name,
                bind=("127.0.0.1", 0),
                config=Config.local(),
                label="lab",
                serf_compat=serf_compat,
                node_factory=builder,
            )
            for name in ("a", "b")
        ]
        try:
            await cluster(agents)
            assert sorted(c["name"] for c in builder.calls) == ["a", "b"]
            by_name = {a.name: a for a in agents}
            for call in builder.calls:
                assert call["label"] == b"lab"
                assert call["config"] is by_name[call["name"]].config
            assert {m.name for m in agents[0].members()} == {"a", "b"}
            # Rules that need swimguard's own core say so instead of misbehaving.
            with pytest.raises(UsageError, match="node_factory"):
                agents[0].report_health(1, "busy")
        finally:
            await close_all(agents)

    asyncio.run(body())
