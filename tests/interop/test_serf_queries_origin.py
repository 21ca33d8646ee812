"""Queries both ways with real serf agents: ours answered by serf, serf's answered by us."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import subprocess

import pytest
from bench.serf_harness import SERF, Cluster, serf_key
from interop_support import GOSSIP_REPAIR, EventLog, local_agent, until

from swimguard.aio.agent import Agent
from swimguard.config import Config
from swimguard.serf import NameConflictResolved, QueryEnd, QueryReceived

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

# -profile=local retransmits each broadcast twice only: a query may miss a member. LAN (4)
# reaches everyone, for serf agents as for us (see test_serf_queries_rejoin.py).
LAN = {"profile": "lan"}
# A serf agent answers a query with its handler's output, and only if there is some (the
# harness's logging handler prints nothing); handlers run in order, so this one answers.
ANSWER = ["-event-handler=query:whoami=echo serf-answer"]


async def answer_queries(agent: Agent) -> None:
    """The application: answer every query with `<name>:<payload>`."""
    async for event in agent.events():
        if isinstance(event, QueryReceived):
            event.respond(f"{agent.name}:".encode() + event.query.payload)


def test_our_query_is_acked_and_answered_by_serf_agents_and_us(cluster: Cluster) -> None:
    a = cluster.start_serf("a", extra=ANSWER, **LAN)
    cluster.start_serf("b", [a.addr], extra=ANSWER, **LAN)

    async def scenario() -> None:
        async with local_agent("py", config=Config.lan()) as py:
            responder = asyncio.create_task(answer_queries(py))
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            await until(lambda: {m.name for m in py.members()} >= {"a", "b"}, 10, "py sees b")
            handle = py.query("whoami", b"hi", request_ack=True, relay_factor=1, expected=3,
                              timeout=20)
            items = [item async for item in handle]
            assert handle.finished is QueryEnd.ALL_ANSWERED, (items, py.drops)
            assert set(handle.responses) == {"a", "b", "py"}
            assert handle.responses["py"] == b"py:hi"
            assert handle.responses["a"] == b"serf-answer\n"
            assert {"a", "b", "py"} <= set(handle.acks)
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder

    asyncio.run(scenario())


def test_serf_query_gets_our_response_once_through_relays(cluster: Cluster) -> None:
    a = cluster.start_serf("a", extra=ANSWER, **LAN)
    cluster.start_serf("b", [a.addr], extra=ANSWER, **LAN)

    async def scenario() -> None:
        async with local_agent("py", config=Config.lan()) as py:
            responder = asyncio.create_task(answer_queries(py))
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            assert SERF is not None
            done = await asyncio.to_thread(
                subprocess.run,
                [SERF, "query", f"-rpc-addr=127.0.0.1:{a.rpc_port}", "-relay-factor=1",
                 "-timeout=3s", "-format=json", "-node=py", "-node=b", "whoami", "yo"],
                capture_output=True, text=True, timeout=30,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            result = json.loads(done.stdout)
            assert sorted(result["Acks"]) == ["b", "py"], result
            assert result["Responses"]["py"] == "py:yo", result
            assert result["Responses"]["b"] == "serf-answer\n", result
            # relayed copies of our answer reached a too, and were deduplicated there
            assert {k: v for k, v in py.drops.items() if k.startswith("serf_")} == {}
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder

    asyncio.run(scenario())


def test_agent_keys_rotate_a_mixed_cluster_with_serfs_messages(cluster: Cluster) -> None:
    old, new = serf_key(1), serf_key(3)
    a = cluster.start_serf("a", encrypt=old, **LAN)
    cluster.start_serf("b", [a.addr], encrypt=old, **LAN)

    async def scenario() -> None:
        async with local_agent("py", keyring=[base64.b64decode(old)], config=Config.lan()) as py:
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            await until(lambda: len(py.members()) == 3, 10, "py sees b")
            installed = await py.keys.install(new)
            assert (installed.error, installed.num_resp) == ("", 3), installed
            refused = await py.keys.remove(old)  # still primary everywhere
            assert refused.error == "3/3 nodes reported failure", refused
            assert refused.messages == dict.fromkeys(
                ("a", "b", "py"), "Removing the primary key is not allowed"
            )
            assert (await py.keys.use(new)).ok
            assert (await py.keys.remove(old)).ok
            listed = await py.keys.list()
            assert listed.keys == {new: 3}, listed
            # and serf's own view agrees
            assert SERF is not None
            done = await asyncio.to_thread(
                subprocess.run,
                [SERF, "keys", f"-rpc-addr=127.0.0.1:{a.rpc_port}", "-list"],
                capture_output=True, text=True, timeout=30,
            )
            assert re.search(rf"{re.escape(new)}\s+\[3/3\]", done.stdout), done.stdout
            assert old not in done.stdout

    asyncio.run(scenario())


def test_swimguard_newcomer_with_a_serf_members_name_loses_and_stops(cluster: Cluster) -> None:
    a = cluster.start_serf("a", **LAN)
    cluster.start_serf("b", [a.addr], **LAN)
    cluster.start_serf("dup", [a.addr], **LAN)

    async def scenario() -> None:
        await until(lambda: cluster.serf_all_alive({"a", "b", "dup"}), GOSSIP_REPAIR,
                    "serf cluster formed", blocking=True)
        async with local_agent("dup", config=Config.lan()) as py:
            log = EventLog(py)
            await py.join([a.addr])
            await until(lambda: py.lost_name_conflict, 30, "py loses the vote")
            (resolved,) = log.of(NameConflictResolved)
            assert not resolved.won
            assert resolved.responses >= 2, resolved
            await log.stop()
        # serf's dup keeps its name
        await until(lambda: a.statuses().get("dup") == "alive", 10, "a: dup alive",
                    blocking=True)

    asyncio.run(scenario())


def test_serf_newcomer_with_our_name_loses_the_vote_and_exits(cluster: Cluster) -> None:
    a = cluster.start_serf("a", **LAN)
    cluster.start_serf("b", [a.addr], **LAN)

    async def scenario() -> None:
        async with local_agent("dup", config=Config.lan()) as py:
            await py.join([a.addr])
            await until(lambda: cluster.serf_all_alive({"a", "b", "dup"}), GOSSIP_REPAIR,
                        "serf agents see our dup", blocking=True)
            other = await asyncio.to_thread(cluster.start_serf, "dup", [a.addr], **LAN)
            # serf's resolveNodeConflict: a and b (and we, about ourselves: not at all)
            # answer with our address, so the serf newcomer is in the minority and quits
            await until(lambda: not other.proc.alive, 30, "serf dup exits")
            assert "minority in name conflict resolution" in other.proc.stderr_text() + (
                cluster.logs(tail=400)
            )
            assert not py.lost_name_conflict
            assert a.statuses().get("dup") == "alive"

    asyncio.run(scenario())


def test_serf_query_tag_filter_is_evaluated_with_go_regexp_syntax(cluster: Cluster) -> None:
    a = cluster.start_serf("a", extra=ANSWER, tags={"role": "db"}, **LAN)

    async def scenario() -> None:
        async with local_agent("py", config=Config.lan(), tags={"role": "web-1"}) as py:
            responder = asyncio.create_task(answer_queries(py))
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            assert SERF is not None
            # \\pL (a Unicode letter class) is RE2/Go syntax that Python's `re` refuses
            done = await asyncio.to_thread(
                subprocess.run,
                [SERF, "query", f"-rpc-addr=127.0.0.1:{a.rpc_port}", "-timeout=2s",
                 "-format=json", "-tag", r"role=^\pL+-\d$", "whoami", "x"],
                capture_output=True, text=True, timeout=30,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            result = json.loads(done.stdout)
            assert result["Responses"] == {"py": "py:x"}, result
            assert not any(k.startswith("serf_query_filter") for k in py.drops), py.drops
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder

    asyncio.run(scenario())
