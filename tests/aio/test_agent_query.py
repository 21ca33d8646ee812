"""`Agent.query` and `QueryReceived.respond` between real agents on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.protocol.members import MemberState
from swimguard.serf import (
    NameConflictResolved,
    QueryAckReceived,
    QueryEnd,
    QueryReceived,
    QueryRespondError,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Responder:
    """Answers every application query with `<name>:<payload>`; records refusals."""

    def __init__(self, agent: Agent, *, twice: bool = False) -> None:
        self.agent = agent
        self.twice = twice
        self.errors: list[str] = []
        self.seen: list[str] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.agent.events():
            if not isinstance(event, QueryReceived):
                continue
            self.seen.append(event.query.name)
            if event.query.name == "silent":
                continue
            event.respond(f"{self.agent.name}:".encode() + event.query.payload)
            if self.twice:
                try:
                    event.respond(b"again")
                except QueryRespondError as exc:
                    self.errors.append(str(exc))


async def with_cluster(body: Callable[[Sequence[Agent], Sequence[Responder]], Awaitable[None]],
                       *, twice: bool = False, keyring: Sequence[bytes] | None = None) -> None:
    tags = [{"role": "web"}, {"role": "db"}, {"role": "web"}]
    agents = [Agent(n, config=Config.local(), tags=t, keyring=keyring)
              for n, t in zip("abc", tags, strict=True)]
    try:
        for a in agents:
            await a.start()
        responders = [Responder(a, twice=twice) for a in agents]
        for a in agents[1:]:
            await a.join([agents[0].advertise_address])
        await until(lambda: all(
            {m.name for m in a.members() if m.state is MemberState.ALIVE} == {"a", "b", "c"}
            for a in agents))
        await body(agents, responders)
    finally:
        for a in agents:
            await a.close()


def test_query_collects_acks_and_responses_and_ends_when_all_expected_answered() -> None:
    async def body(agents: Sequence[Agent], _r: Sequence[Responder]) -> None:
        handle = agents[0].query("whoami", b"hi", request_ack=True, expected=3, timeout=30)
        items = [item async for item in handle]
        assert handle.finished is QueryEnd.ALL_ANSWERED
        assert handle.responses == {"a": b"a:hi", "b": b"b:hi", "c": b"c:hi"}
        assert sorted(handle.acks) == ["a", "b", "c"]
        assert len(items) == 6
        assert {i.from_ for i in items if isinstance(i, QueryAckReceived)} == {"a", "b", "c"}

    asyncio.run(with_cluster(body))


def test_node_and_tag_filters_pick_the_responders() -> None:
    async def body(agents: Sequence[Agent], _r: Sequence[Responder]) -> None:
        named = await agents[0].query("whoami", filter_nodes=["c"], timeout=30).wait()
        assert named.finished is QueryEnd.ALL_ANSWERED
        assert named.responses == {"c": b"c:"}
        tagged = await agents[0].query("whoami", filter_tags={"role": "^d"}, expected=1,
                                       timeout=30).wait()
        assert tagged.responses == {"b": b"b:"}

    asyncio.run(with_cluster(body))


def test_query_without_answers_ends_at_its_deadline() -> None:
    async def body(agents: Sequence[Agent], responders: Sequence[Responder]) -> None:
        handle = await agents[1].query("silent", request_ack=True, timeout=0.5).wait()
        assert handle.finished is QueryEnd.DEADLINE
        assert handle.responses == {}
        # acks may race the deadline on a loaded machine; b's own ack never leaves b
        assert "b" in handle.acks
        # delivered everywhere, just never answered (gossip may outlast the short timeout)
        await until(lambda: all(r.seen == ["silent"] for r in responders))

    asyncio.run(with_cluster(body))


def test_respond_twice_gets_serfs_error() -> None:
    async def body(agents: Sequence[Agent], responders: Sequence[Responder]) -> None:
        handle = await agents[0].query("whoami", expected=3, timeout=30).wait()
        assert handle.finished is QueryEnd.ALL_ANSWERED
        await until(lambda: all(r.errors for r in responders))
        assert {e for r in responders for e in r.errors} == {
            "failed to respond to key query: response already sent"
        }

    asyncio.run(with_cluster(body, twice=True))


def test_query_refuses_what_serf_refuses() -> None:
    async def body(agents: Sequence[Agent], _r: Sequence[Responder]) -> None:
        with pytest.raises(ValueError, match="Queries cannot contain the '_serf_' prefix"):
            agents[0].query("_serf_conflict", b"a")
        with pytest.raises(ValueError, match="query exceeds limit of 1024 bytes"):
            agents[0].query("big", bytes(1100))
        # what `serf reachability` sends: acks only, answered by the Serf layer itself
        ping = await agents[0].query("_serf_ping", request_ack=True, timeout=0.5).wait()
        assert ping.responses == {}
        assert "a" in ping.acks

    asyncio.run(with_cluster(body))


def test_duplicate_name_the_newcomer_loses_the_vote_and_stops() -> None:
    async def body(agents: Sequence[Agent], _r: Sequence[Responder]) -> None:
        original = agents[2]  # "c", known to a and b
        dup = Agent("c", config=Config.local())
        await dup.start()
        try:
            events: list[object] = []

            async def collect() -> None:
                async for event in dup.events():
                    events.append(event)

            task = asyncio.create_task(collect())
            await dup.join([agents[0].advertise_address])
            await asyncio.wait_for(task, 30)  # the stream ends: dup closed itself
            (resolved,) = [e for e in events if isinstance(e, NameConflictResolved)]
            assert not resolved.won
            assert resolved.responses >= 1
            assert dup.lost_name_conflict
            assert not original.lost_name_conflict
        finally:
            await dup.close()

    asyncio.run(with_cluster(body))


K1, K2 = bytes(range(16)), bytes(range(1, 17))


def test_keys_rotate_every_members_keyring_with_serfs_reports() -> None:
    b64 = lambda k: base64.b64encode(k).decode()  # noqa: E731

    async def body(agents: Sequence[Agent], _r: Sequence[Responder]) -> None:
        keys = agents[1].keys
        installed = await keys.install(b64(K2))
        assert (installed.error, installed.num_nodes, installed.num_resp) == ("", 3, 3)
        assert (await keys.use(K2)).ok
        refused = await keys.remove(K2)
        assert refused.error == "3/3 nodes reported failure"
        assert refused.messages == dict.fromkeys("abc", "Removing the primary key is not allowed")
        assert (await keys.remove(K1)).ok
        listed = await keys.list()
        while listed.num_resp < listed.num_nodes:  # a reply later than Serf's default query
            listed = await keys.list()  # timeout (1.6 s here) on a loaded machine: ask again
        assert listed.keys == {b64(K2): 3}
        # the cluster still talks with the new key: a member's update reaches the others
        agents[0].update_tags({"role": "rotated"})
        await until(lambda: any(m.name == "a" and b"rotated" in m.meta
                                for m in agents[2].members()))
        bad = await keys.install("!!!!")
        assert (bad.error, bad.num_nodes) == ("illegal base64 data at input byte 0", 0)

    asyncio.run(with_cluster(body, keyring=[K1]))


def test_after_close_query_and_respond_raise_and_open_queries_end() -> None:
    async def body() -> None:
        agent = Agent("solo", config=Config.local())
        await agent.start()
        events = agent.events()
        handle = agent.query("q", timeout=60)
        received = await anext(events)
        while not isinstance(received, QueryReceived):
            received = await anext(events)
        await agent.close()
        assert (await handle.wait()).finished is QueryEnd.CLOSED
        with pytest.raises(UsageError, match="the agent is closed"):
            received.respond(b"late")
        with pytest.raises(UsageError, match="the agent is closed"):
            agent.query("q")

    asyncio.run(body())
