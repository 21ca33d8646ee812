"""Mixed clusters with real serf agents: Serf queries reach us, restarted members come back."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import time

import pytest
from bench.serf_harness import SERF, Cluster, serf_key, wait_for
from interop_support import (
    GOSSIP_REPAIR,
    EventLog,
    addr,
    alive_names,
    local_agent,
    states,
    until,
)

from swimguard.config import Config
from swimguard.protocol.members import MemberState
from swimguard.serf import QueryReceived

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


# Queries are plain gossip: with -profile=local (RetransmitMult 2) a query reaches each of 3
# peers with probability ~0.9 only, for serf agents as much as for us. LAN (4) reaches all.
LAN = {"profile": "lan"}


def test_serf_reachability_counts_our_ack(cluster: Cluster) -> None:
    a = cluster.start_serf("a", **LAN)
    cluster.start_serf("b", [a.addr], **LAN)

    async def scenario() -> None:
        async with local_agent("py", config=Config.lan()) as py:
            log = EventLog(py)
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            assert SERF is not None
            done = await asyncio.to_thread(
                subprocess.run,
                [SERF, "reachability", f"-rpc-addr=127.0.0.1:{a.rpc_port}"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            out = done.stdout + done.stderr
            assert "Successfully contacted all live nodes" in out, out
            assert "live members: 3" in out, out
            # internal queries are answered by the Serf layer, not passed to the application
            assert log.of(QueryReceived) == []
            await log.stop()

    asyncio.run(scenario())


def test_restarted_swimguard_agent_is_alive_again_for_serf(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])
    py = cluster.start_swim("py", [a.addr])
    wait_for(lambda: a.statuses().get("py") == "alive", 10, what="a sees py")
    # b (learning of py only by gossip) must know py before the kill: py2 joins through b,
    # and only b's push/pull listing py as dead makes py2 refute it at once; otherwise a
    # ignores py2's alive (incarnation not above the dead one) until a's next push/pull.
    wait_for(lambda: cluster.serf_all_alive({"a", "b", "py"}), GOSSIP_REPAIR, what="b sees py")
    py.proc.kill9()
    wait_for(lambda: a.statuses().get("py") == "failed", 20, what="a: py failed")
    wait_for(lambda: b.statuses().get("py") == "failed", 20, what="b: py failed")
    # same name, same address: our new incarnation must refute the old "dead"
    py2 = cluster.start_swim("py", [b.addr], port=py.port)
    wait_for(lambda: a.statuses().get("py") == "alive", 10, what="a: py alive again")
    wait_for(lambda: b.statuses().get("py") == "alive", 10, what="b: py alive again")
    wait_for(lambda: py2.view().get("a") == "member-join", 10, what="py2 sees a")


def test_restarted_serf_agent_is_alive_again_for_swimguard(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])

    async def scenario() -> None:
        async with local_agent("py") as py:
            await py.join([a.addr])
            await until(lambda: alive_names(py) == {"a", "b", "py"}, 10, "py joined")
            b.proc.kill9()
            await until(lambda: states(py).get("b") is MemberState.DEAD, 20, "py: b dead")
            await asyncio.to_thread(cluster.start_serf, "b", [a.addr], port=b.port)
            await until(lambda: states(py).get("b") is MemberState.ALIVE, 10, "py: b back")
            assert states(py)["a"] is MemberState.ALIVE

    asyncio.run(scenario())


def test_serf_query_with_relays_is_acked_by_us(cluster: Cluster) -> None:
    a = cluster.start_serf("a", **LAN)
    cluster.start_serf("b", [a.addr], **LAN)
    cluster.start_serf("c", [a.addr], **LAN)

    async def scenario() -> None:
        async with local_agent("py", config=Config.lan()) as py:
            log = EventLog(py)
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            assert SERF is not None
            t0 = time.monotonic()
            done = await asyncio.to_thread(
                subprocess.run,
                [
                    SERF,
                    "query",
                    f"-rpc-addr=127.0.0.1:{a.rpc_port}",
                    "-relay-factor=2",
                    "-timeout=2s",
                    "-format=json",
                    "whoami",
                    "hi",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            result = json.loads(done.stdout)
            got = [
                (round(t - t0, 3), e.query.name)
                for t, e in log.events
                if isinstance(e, QueryReceived)
            ]
            assert sorted(result["Acks"]) == ["a", "b", "c", "py"], (got, py.drops)
            # other members' relayed acks may pass through us: forwarded, nothing dropped
            assert {k: v for k, v in py.drops.items() if k.startswith("serf_")} == {}
            await log.stop()

    asyncio.run(scenario())


def test_serf_key_rotation_includes_us(cluster: Cluster) -> None:
    """`serf keys` install/use/remove/list are internal queries we must answer."""
    old, new = serf_key(1), serf_key(3)
    a = cluster.start_serf("a", encrypt=old, **LAN)
    cluster.start_serf("b", [a.addr], encrypt=old, **LAN)

    def keys(*args: str) -> str:
        assert SERF is not None
        done = subprocess.run(
            [SERF, "keys", f"-rpc-addr=127.0.0.1:{a.rpc_port}", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    async def scenario() -> None:
        async with local_agent("py", keyring=[base64.b64decode(old)], config=Config.lan()) as py:
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            await asyncio.to_thread(keys, "-install", new)
            await asyncio.to_thread(keys, "-use", new)
            await asyncio.to_thread(keys, "-remove", old)
            listed = await asyncio.to_thread(keys, "-list")
            assert re.search(rf"{re.escape(new)}\s+\[3/3\]", listed), listed
            assert old not in listed
            # the rotated cluster still talks to us: a serf agent with only the new key joins py
            c = await asyncio.to_thread(cluster.start_serf, "c", [addr(py)], encrypt=new, **LAN)
            await until(
                lambda: c.statuses() == dict.fromkeys({"a", "b", "c", "py"}, "alive"),
                10,
                "c joined through py with the new key",
                blocking=True,
            )

    asyncio.run(scenario())
