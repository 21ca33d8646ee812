"""Join an existing Serf (or memberlist) gossip pool and list its members with their tags.

    python join_serf.py SEED_HOST:PORT [BIND_HOST:PORT]
"""

import asyncio
import sys

from swimguard import Agent, Config


async def main(seed: str, bind: str) -> None:
    async with Agent("py-docs", bind=bind, config=Config.lan(), tags={"role": "web"}) as agent:
        joined = await agent.join([seed])  # JoinError if the seed does not answer
        print(f"joined via {joined} seed(s)")
        for member in sorted(agent.members(), key=lambda m: m.name):
            host, port = member.addr
            tags = member.tags
            print(f"{member.name:10} {host}:{port:<6} {member.state.name:7} {tags}")
        graceful = await agent.leave(timeout=5.0)  # Serf shows us as "left", not "failed"
        print(f"left gracefully: {graceful}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:0"))
