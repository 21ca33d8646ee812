"""Agent.join refuses a seed its bound socket cannot reach by UDP (issue 10, finding 6)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aio_fakes import FakeNode

from swimguard.aio import Agent
from swimguard.aio.agent import seed_family_problem
from swimguard.config import Config
from swimguard.errors import JoinError

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("bind", "seed", "ok"),
    [
        ("127.0.0.1", "127.0.0.2", True),
        ("0.0.0.0", "10.0.0.1", True),
        ("::1", "::2", True),
        ("::", "127.0.0.1", True),  # the dual-stack wildcard reaches both
        ("::", "::1", True),
        ("127.0.0.1", "::1", False),
        ("0.0.0.0", "::1", False),
        ("::1", "127.0.0.1", False),  # a specific IPv6 address is IPv6 only
    ],
)
def test_seed_family_rule(bind: str, seed: str, ok: bool) -> None:
    problem = seed_family_problem(bind, seed)
    assert (problem is None) == ok
    if problem is not None:
        assert seed in problem
        assert bind in problem


def test_ipv4_agent_refuses_an_ipv6_seed_before_contacting_anyone() -> None:
    async def main() -> None:
        agent = Agent("v4", bind=("127.0.0.1", 0), config=Config.local(),
                      node_factory=FakeNode, serf_compat=False)
        async with agent:
            with pytest.raises(JoinError, match=r"'\[::1\]:7946'.*IPv6.*IPv4"):
                await agent.join(["127.0.0.1:7946", "[::1]:7946"])
            node = FakeNode.built["v4"]
            assert node.of_kind("join") == []  # refused as a whole, nothing sent
            assert await agent.join(["127.0.0.1:7946"]) == 1

    asyncio.run(main())


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this host")
def test_ipv6_agent_refuses_an_ipv4_seed_unless_bound_to_the_wildcard() -> None:
    async def main() -> None:
        for host, refused in (("::1", True), ("::", False)):
            agent = Agent("v6", bind=(host, 0), config=Config.local(),
                          node_factory=FakeNode, serf_compat=False)
            async with agent:
                if refused:
                    with pytest.raises(JoinError, match="IPv4"):
                        await agent.join([("127.0.0.1", 7946)])
                else:
                    assert await agent.join([("127.0.0.1", 7946)]) == 1

    asyncio.run(main())


def test_a_seed_name_resolves_to_an_address_the_socket_can_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = {
        "dual.test": ["::1", "127.0.0.1"],  # AAAA first, as some resolvers answer
        "v6only.test": ["::1"],
    }

    def fake_getaddrinfo(host: str, port: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM, 0, "",
                 (ip, 0)) for ip in records[host]]

    monkeypatch.setattr("swimguard.aio.sockets.socket.getaddrinfo", fake_getaddrinfo)

    async def main() -> None:
        agent = Agent("v4", bind=("127.0.0.1", 0), config=Config.local(),
                      node_factory=FakeNode, serf_compat=False)
        async with agent:
            node = FakeNode.built["v4"]
            assert await agent.join(["dual.test:7946"]) == 1
            assert node.of_kind("join")[0][1] == (("127.0.0.1", 7946),)
            with pytest.raises(JoinError, match=r"v6only\.test.*IPv6"):
                await agent.join(["v6only.test:7946"])

    asyncio.run(main())
