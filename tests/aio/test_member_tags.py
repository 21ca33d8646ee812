"""`Member.tags`: first-class Serf tags on the members an agent running Serf hands out."""

from __future__ import annotations

import asyncio

import pytest

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.protocol.events import MemberJoined, MemberUpdated
from swimguard.protocol.members import Member, MemberState

pytestmark = pytest.mark.timeout(30)


def test_members_and_member_events_carry_serf_tags() -> None:
    async def main() -> None:
        config = Config.local()
        async with Agent("a", config=config, tags={"role": "db"}) as a, \
                Agent("b", config=config, tags={"role": "web", "dc": "x"}) as b:
            events = a.events()
            assert a.local_member.tags == {"role": "db"}
            await b.join([a.advertise_address])
            async for event in events:
                if isinstance(event, MemberJoined) and event.member.name == "b":
                    assert event.member.tags == {"role": "web", "dc": "x"}
                    break
            assert {m.name: m.tags for m in b.members()} == {
                "a": {"role": "db"}, "b": {"role": "web", "dc": "x"}}
            b.update_tags({"role": "cache"})
            async for event in events:
                if isinstance(event, MemberUpdated) and event.member.name == "b":
                    assert event.member.tags == {"role": "cache"}
                    break

    asyncio.run(main())


def test_a_plain_memberlist_agent_leaves_tags_unset() -> None:
    async def main() -> None:
        async with Agent("a", config=Config.local(), serf_compat=False, meta=b"web") as a:
            assert a.local_member.tags is None
            assert a.local_member.meta == b"web"

    asyncio.run(main())


def test_tags_are_derived_so_they_take_no_part_in_equality() -> None:
    plain = Member("a", ("127.0.0.1", 1), 1, MemberState.ALIVE, b"web")
    tagged = Member("a", ("127.0.0.1", 1), 1, MemberState.ALIVE, b"web", tags={"role": "web"})
    assert plain == tagged
    assert hash(plain) == hash(tagged)
