"""Snapshots: a restarted agent rejoins the members it knew, without replaying old events."""

import asyncio

from swimguard import Agent, AgentConfig, Config
from swimguard.serf import UserEventReceived


async def next_user_event(agent: Agent) -> UserEventReceived:
    async for event in agent.events():
        if isinstance(event, UserEventReceived):
            return event
    raise RuntimeError("agent closed")


async def main() -> None:
    config = Config.local()
    options = AgentConfig(snapshot_path="b.snap")  # Serf's -snapshot
    async with Agent("a", bind="127.0.0.1:0", config=config) as a:
        b = Agent("b", bind="127.0.0.1:0", config=config, options=options)
        await b.start()
        await b.join([a.bound_address])
        a.user_event("deploy", b"v1")
        event = await next_user_event(b)
        print(f"b got {event.name} {event.payload.decode()}")
        port = b.bound_address[1]
        await b.close()  # a crash: no leave, so the snapshot still remembers a

        # Same name, same address, no seeds: the snapshot says whom to rejoin.
        async with Agent("b", bind=("127.0.0.1", port), config=config, options=options) as b:
            print(f"b rejoined through {await b.wait_rejoin()}")
            a.user_event("deploy", b"v2")
            event = await next_user_event(b)  # v1 is not delivered a second time
            print(f"b got {event.name} {event.payload.decode()}")
            # a's push/pull state carried v1 again on the rejoin: dropped as already seen
            print("v1 dropped as seen before the restart:",
                  b.drops["serf_event_before_restart"] > 0)


asyncio.run(main())
