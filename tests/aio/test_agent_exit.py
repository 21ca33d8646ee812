"""Leaving `async with Agent(...)` leaves gracefully, then closes (issue 16, point 1).

`close()` stays the hard stop; `AgentConfig.exit_leave_timeout` bounds the graceful part
(0 skips it), and nothing is waited for when nobody would hear the leave.
"""

from __future__ import annotations

import asyncio

import pytest
from aio_fakes import FakeNode

from swimguard.aio import Agent, AgentConfig
from swimguard.config import Config
from swimguard.protocol.events import MemberFailed, MemberLeft
from swimguard.protocol.members import Member, MemberState

pytestmark = pytest.mark.timeout(60)


def fake_agent(name: str, **options: float) -> Agent:
    return Agent(name, config=Config.local(), serf_compat=False, node_factory=FakeNode,
                 options=AgentConfig(**options))  # type: ignore[arg-type]


def peer(state: MemberState) -> Member:
    return Member("p", ("127.0.0.1", 1), 1, state)


def test_peers_see_a_member_that_leaves_async_with_as_left() -> None:
    async def main() -> None:
        config = Config.local()
        async with Agent("a", config=config) as a:
            events = a.events()
            async with Agent("b", config=config) as b:
                await b.join([a.advertise_address])
            async for event in events:  # b's exit: left, never failed
                assert not isinstance(event, MemberFailed)
                if isinstance(event, MemberLeft):
                    assert event.member.name == "b"
                    assert event.member.state is MemberState.LEFT
                    break

    asyncio.run(main())


def test_the_exit_leaves_only_when_someone_would_hear_it() -> None:
    async def main() -> list[tuple[str, list[float]]]:
        runs = []
        cases: list[tuple[str, dict[str, float], MemberState | None]] = [
            ("alone", {}, None),
            ("peer alive", {}, MemberState.ALIVE),
            ("peer suspect", {"exit_leave_timeout": 0.25}, MemberState.SUSPECT),
            ("peer dead", {}, MemberState.DEAD),
            ("hard stop", {"exit_leave_timeout": 0}, MemberState.ALIVE),
        ]
        for label, options, state in cases:
            async with fake_agent(label.replace(" ", "-"), **options):
                node = FakeNode.built[label.replace(" ", "-")]
                if state is not None:
                    node.others["p"] = peer(state)
            runs.append((label, [timeout for _k, _now, timeout in node.of_kind("leave")]))
        return runs

    assert asyncio.run(main()) == [
        ("alone", []),
        ("peer alive", [1.0]),
        ("peer suspect", [0.25]),
        ("peer dead", []),
        ("hard stop", []),
    ]


def test_exit_leave_timeout_is_validated() -> None:
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="exit_leave_timeout"):
            AgentConfig(exit_leave_timeout=bad)
