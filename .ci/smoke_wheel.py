"""Wheel smoke test: run by the Python of a fresh venv holding only the built wheel.

Checks that the installed package (not a source tree) imports and that two agents on
127.0.0.1 join each other. `.ci/test-pythons` runs it, then `swimguard --version`.
"""

from __future__ import annotations

import asyncio
import sys
from importlib import metadata
from pathlib import Path

import swimguard
from swimguard import Agent, Config
from swimguard.protocol.events import MemberJoined

# A hang is a failure, not a wait: the join itself is event-driven below.
HANG_LIMIT = 60.0


async def _joined(agent: Agent, name: str) -> None:
    async for event in agent.events():
        if isinstance(event, MemberJoined) and event.member.name == name:
            return
    raise AssertionError(f"{agent.name}: events ended before {name} joined")


async def main() -> None:
    config = Config.local()
    async with Agent("a", bind="127.0.0.1:0", config=config, tags={"role": "smoke"}) as a, \
            Agent("b", bind="127.0.0.1:0", config=config) as b:
        a_sees_b = asyncio.create_task(_joined(a, "b"))
        b_sees_a = asyncio.create_task(_joined(b, "a"))
        assert await b.join([a.bound_address]) == 1
        await asyncio.wait_for(asyncio.gather(a_sees_b, b_sees_a), HANG_LIMIT)
        names = sorted(m.name for m in b.members())
        assert names == ["a", "b"], names


if __name__ == "__main__":
    where = Path(swimguard.__file__).resolve()
    if not where.is_relative_to(Path(sys.prefix).resolve()):
        sys.exit(f"smoke: swimguard imported from {where}, not from the venv {sys.prefix}")
    asyncio.run(main())
    version = metadata.version("swimguard")
    print(f"smoke: swimguard {version} from {where.parent}: two agents joined")
