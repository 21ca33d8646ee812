"""Two agents on 127.0.0.1 join, watch each other, and one leaves gracefully."""

import asyncio

from swimguard import Agent, Config
from swimguard.protocol.events import MemberJoined, MemberLeft


async def main() -> None:
    config = Config.local()  # memberlist's "local" timing; Config.lan() is the default
    async with Agent("a", bind="127.0.0.1:0", config=config) as a, \
            Agent("b", bind="127.0.0.1:0", config=config) as b:
        events = a.events()  # the first consumer: a bounded buffer from the start
        await b.join([a.bound_address])  # push/pull with the seed; JoinError if none answers
        async for event in events:
            if isinstance(event, MemberJoined):
                print("joined:", event.member.name)
                if event.member.name == "b":
                    break
        print("a sees:", sorted(m.name for m in a.members()))

        await b.leave(timeout=2.0)  # graceful: peers see "left", not "failed"
        async for event in events:
            if isinstance(event, MemberLeft):
                print("left:", event.member.name, event.member.state.name)
                break


asyncio.run(main())
