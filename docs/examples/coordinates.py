"""Network coordinates: RTT estimates between agents, learned from their probe acks."""

import asyncio
import math

from swimguard import Agent, Config


async def main() -> None:
    config = Config.local()
    async with Agent("a", bind="127.0.0.1:0", config=config) as a, \
            Agent("b", bind="127.0.0.1:0", config=config) as b, \
            Agent("c", bind="127.0.0.1:0", config=config) as c:
        for agent in (b, c):
            await agent.join([a.bound_address])
        # Each probe ack brings one sample (no event announces it); a member is probed
        # every few probe intervals.
        while a.rtt("b") is None or a.rtt("c") is None:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        for name in ("b", "c"):
            estimate = a.rtt(name)
            assert estimate is not None
            assert math.isfinite(estimate)
            print(f"a <-> {name}: {estimate * 1000:.3f} ms")
        between = a.rtt("b", "c")  # any two members a holds coordinates for
        assert between is not None
        print(f"b <-> c, from a's cache: {between * 1000:.3f} ms")
        own = a.coordinate()
        print(f"a's coordinate: {len(own.vec)} dimensions, error {own.error:.2f}")


asyncio.run(main())
