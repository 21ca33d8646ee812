"""The agent's API raises where the caller made the mistake (issue 16, point 1).

A call that cannot do what it was asked raises at the call site: a value over a limit
before anything is queued, any call on a closed agent at once. Nothing is left to be
counted as `internal_error` inside the driver. Real agents on 127.0.0.1.
"""

from __future__ import annotations

import asyncio

import pytest

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.errors import UsageError

pytestmark = pytest.mark.timeout(30)


def test_a_broadcast_too_large_for_a_packet_raises_before_it_is_queued() -> None:
    async def main() -> None:
        async with Agent("a", config=Config.local()) as a:
            with pytest.raises(ValueError, match=r"broadcast of 2000 bytes.*at most \d+ bytes"):
                a.broadcast(b"x" * 2000)
            with pytest.raises(ValueError, match="empty"):
                a.broadcast(b"")
            a.broadcast(b"x" * 1000)  # fits: queued
            assert "internal_error" not in a.drops

    asyncio.run(main())


def test_metadata_over_the_limit_raises_and_changes_nothing() -> None:
    async def main() -> None:
        async with Agent("a", config=Config.local(), serf_compat=False, meta=b"m") as a:
            with pytest.raises(ValueError, match="600 bytes; the limit is 512"):
                a.update_meta(b"x" * 600)
            with pytest.raises(ValueError, match="more than 512"):
                a.update_tags({"k": "v" * 600})
            assert a.local_member.meta == b"m"
            a.update_meta(b"n")
            assert a.local_member.meta == b"n"
            assert "internal_error" not in a.drops

    asyncio.run(main())


def test_every_call_on_a_closed_agent_says_it_is_closed() -> None:
    async def main() -> None:
        a = Agent("a", config=Config.local())
        await a.start()
        await a.close()
        with pytest.raises(UsageError, match="the agent is closed"):
            await a.join(["127.0.0.1:1"])  # not "join timed out" after seconds
        with pytest.raises(UsageError, match="closed"):
            await a.leave()
        for call in (
            lambda: a.broadcast(b"x"),
            lambda: a.send_best_effort(("127.0.0.1", 1), b"x"),
            lambda: a.send_reliable(("127.0.0.1", 1), b"x"),
            lambda: a.update_meta(b""),
            lambda: a.update_tags({}),
            lambda: a.user_event("e"),
            a.members,
        ):
            with pytest.raises(UsageError, match="closed"):
                call()

    asyncio.run(main())


def test_a_leave_timeout_that_is_not_a_finite_duration_raises() -> None:
    async def main() -> None:
        async with Agent("a", config=Config.local()) as a:
            for bad in (-1.0, float("inf"), float("nan")):
                with pytest.raises(ValueError, match="leave timeout"):
                    await a.leave(bad)
            assert a.local_member.state.name == "ALIVE"  # nothing was started

    asyncio.run(main())
