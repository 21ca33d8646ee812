"""Service discovery with Serf tags: find members by role, follow tag changes."""

import asyncio

from swimguard import Agent, Config, Member, MemberState
from swimguard.protocol.events import MemberJoined, MemberUpdated


def services(members: list[Member], role: str) -> list[str]:
    """Alive members whose `role` tag is `role`, as "name@host:port"."""
    return sorted(
        f"{m.name}@{m.addr[0]}:{m.addr[1]}"
        for m in members
        if m.state is MemberState.ALIVE and m.tags is not None and m.tags.get("role") == role
    )


async def main() -> None:
    config = Config.local()
    async with Agent("client", bind="127.0.0.1:0", config=config) as client, \
            Agent("web1", bind="127.0.0.1:0", config=config, tags={"role": "web"}) as web1, \
            Agent("db1", bind="127.0.0.1:0", config=config, tags={"role": "db"}) as db1:
        events = client.events()
        await web1.join([client.bound_address])
        await db1.join([client.bound_address])
        seen = set()
        async for event in events:
            if isinstance(event, MemberJoined):
                seen.add(event.member.name)
                if seen == {"client", "web1", "db1"}:
                    break
        print("web:", [s.split("@")[0] for s in services(client.members(), "web")])
        print("db:", [s.split("@")[0] for s in services(client.members(), "db")])

        # Tags change at run time; peers see a MemberUpdated carrying the new metadata.
        web1.update_tags({"role": "web", "version": "2"})
        async for event in events:
            if isinstance(event, MemberUpdated) and event.member.name == "web1":
                print("web1 now:", event.member.tags)
                break


asyncio.run(main())
