"""Serf queries: ask the cluster, collect acks and answers, answer once."""

import asyncio

from swimguard import Agent, Config
from swimguard.protocol.events import MemberJoined
from swimguard.serf import QueryReceived, QueryRespondError


async def answer(agent: Agent, refusals: list[str]) -> None:
    """The application's side: answer every `whoami` query with our name."""
    async for event in agent.events():
        if isinstance(event, QueryReceived) and event.query.name == "whoami":
            event.respond(b"I am " + agent.name.encode())
            try:
                event.respond(b"twice?")  # once only, as in Serf
            except QueryRespondError as exc:
                refusals.append(f"{agent.name}: {exc}")


async def main() -> None:
    config = Config.local()
    async with Agent("a", bind="127.0.0.1:0", config=config) as a, \
            Agent("b", bind="127.0.0.1:0", config=config) as b:
        events = a.events()
        await b.join([a.bound_address])
        async for event in events:
            if isinstance(event, MemberJoined) and event.member.name == "b":
                break
        refusals: list[str] = []
        responders = [asyncio.create_task(answer(x, refusals)) for x in (a, b)]
        await asyncio.sleep(0)  # let them start reading
        # Ends as soon as both members answered (or at Serf's default timeout).
        handle = a.query("whoami", request_ack=True, expected=2)
        # `async for item in handle` would yield each ack and answer as it arrives.
        await handle.wait()
        print("acks:", sorted(handle.acks))
        for name, payload in sorted(handle.responses.items()):
            print(f"{name} answered {payload.decode()!r}")
        print("finished:", handle.finished.value if handle.finished else None)
        print("\n".join(sorted(refusals)))
        for task in responders:
            task.cancel()


asyncio.run(main())
