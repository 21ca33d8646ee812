"""User messages: gossip broadcast, best-effort UDP and reliable TCP, received as UserMessage."""

import asyncio

from swimguard import Agent, Config
from swimguard.protocol.events import MemberJoined, UserMessage


async def main() -> None:
    config = Config.local()
    async with Agent("a", bind="127.0.0.1:0", config=config) as a, \
            Agent("b", bind="127.0.0.1:0", config=config) as b:
        events = b.events()
        await a.join([b.bound_address])
        async for event in events:
            if isinstance(event, MemberJoined) and event.member.name == "a":
                break
        # The first byte must not be 0x00-0x09 while serf_compat is on (see "Messaging limits").
        a.broadcast(b"hello everyone")
        a.send_best_effort(b.advertise_address, b"hello by UDP")
        await a.send_reliable("b", b"hello by TCP")  # a name works too; DeliveryError if lost
        got = set()
        async for event in events:
            if isinstance(event, UserMessage):
                got.add(event.data)
                if len(got) == 3:
                    break
        for data in sorted(got):
            print(data.decode())


asyncio.run(main())
