"""Several `events()` consumers, each with its own bounded buffer (issue 16, point 1).

A second consumer used to receive nothing; now every consumer gets every event from
its subscription on (the first one from the start), and a slow or abandoned consumer
loses events from its own buffer only.
"""

from __future__ import annotations

import asyncio

import pytest

from swimguard.aio import Agent
from swimguard.aio.event_buffer import EventFanout, EventsLost
from swimguard.config import Config
from swimguard.protocol.events import MemberJoined, UserMessage

pytestmark = pytest.mark.timeout(30)


async def take(it: object, n: int) -> list[object]:
    got: list[object] = []
    async for item in it:  # type: ignore[attr-defined]
        got.append(item)
        if len(got) == n:
            break
    return got


def test_the_first_consumer_sees_from_the_start_later_ones_from_their_subscription() -> None:
    async def main() -> None:
        fan: EventFanout[int] = EventFanout(10)
        fan.put(1)
        first = fan.subscribe()
        fan.put(2)
        second = fan.subscribe()
        fan.put(3)
        fan.close()
        assert [x async for x in first] == [1, 2, 3]
        assert [x async for x in second] == [3]
        late = fan.subscribe()  # after close: ends at once
        assert [x async for x in late] == []

    asyncio.run(main())


def test_a_slow_consumer_loses_only_its_own_events() -> None:
    async def main() -> None:
        fan: EventFanout[int] = EventFanout(2)
        fast, slow = fan.subscribe(), fan.subscribe()
        got_fast: list[object] = []
        for i in range(5):
            fan.put(i)
            got_fast += await take(fast, 1)
        fan.close()
        assert got_fast == [0, 1, 2, 3, 4]
        assert [x async for x in slow] == [0, 1, EventsLost(3)]
        assert fan.total_lost == 3

    asyncio.run(main())


def test_a_consumer_that_stops_hands_its_buffer_to_the_next_one() -> None:
    async def main() -> None:
        fan: EventFanout[int] = EventFanout(2)
        kept = fan.subscribe()  # the buffer from the start
        abandoned = fan.subscribe()
        fan.put(0)
        fan.put(1)
        assert await take(abandoned, 1) == [0]  # `break` out of its loop...
        del abandoned  # ...and dropped: its buffer is the spare at once, still fed
        assert fan.consumers == 2
        later = fan.subscribe()  # takes it over, where the last one stopped
        assert await take(later, 1) == [1]
        never_iterated = fan.subscribe()  # a fresh buffer; given back unread
        del never_iterated
        assert fan.consumers == 3  # kept, later, and the spare
        await later.aclose()  # type: ignore[attr-defined]
        assert fan.consumers == 2  # a spare exists already: later's buffer goes
        assert await take(kept, 2) == [0, 1]

    asyncio.run(main())


def test_two_consumers_of_one_agent_both_receive_its_events() -> None:
    async def main() -> None:
        config = Config.local()
        async with Agent("a", config=config) as a, Agent("b", config=config) as b:
            first, second = b.events(), b.events()
            await a.join([b.advertise_address])
            a.send_best_effort("b", b"to both")

            async def until_message(it: object) -> list[str]:
                seen: list[str] = []
                async for event in it:  # type: ignore[attr-defined]
                    if isinstance(event, MemberJoined):
                        seen.append(event.member.name)
                    if isinstance(event, UserMessage):
                        seen.append(event.data.decode())
                        return seen
                return seen

            got = await asyncio.gather(until_message(first), until_message(second))
            assert got[0] == ["b", "a", "to both"]  # from the start: its own join first
            assert got[1] == ["a", "to both"]

    asyncio.run(main())
