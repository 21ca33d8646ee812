"""Mixed clusters with real serf agents: encryption, compression, tags, Serf push/pull state."""

from __future__ import annotations

import asyncio
import base64

import pytest
from bench.serf_harness import Cluster, serf_key
from interop_support import EventLog, addr, alive_names, local_agent, states, until

from swimguard.config import Config
from swimguard.errors import JoinError
from swimguard.protocol.members import MemberState
from swimguard.serf import UserEventReceived, decode_tags

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

KEY = serf_key(1)
OTHER_KEY = serf_key(2)


def _serf_errors(cluster: Cluster) -> list[str]:
    """[ERR] lines any serf agent logged (decode failures, rejected merges ...)."""
    return [
        f"{p.name}: {line}"
        for p in cluster.procs
        if p.name.startswith("serf-")
        for _, line in p.log.snapshot()
        if "[ERR]" in line
    ]


def test_same_encryption_key_forms_one_cluster(cluster: Cluster) -> None:
    a = cluster.start_serf("a", encrypt=KEY)
    cluster.start_serf("b", [a.addr], encrypt=KEY)

    async def scenario() -> None:
        async with local_agent("py", keyring=[base64.b64decode(KEY)]) as py:
            await py.join([a.addr])
            c = await asyncio.to_thread(cluster.start_serf, "c", [addr(py)], encrypt=KEY)
            everyone = {"a", "b", "c", "py"}
            await until(lambda: alive_names(py) == everyone, 10, "py sees everyone")
            await until(
                lambda: c.statuses() == dict.fromkeys(everyone, "alive"),
                10,
                "c (joined through py) sees everyone",
                blocking=True,
            )
            assert py.drops.get("decrypt", 0) == 0
        assert _serf_errors(cluster) == []

    asyncio.run(scenario())


@pytest.mark.parametrize("our_key", [OTHER_KEY, None], ids=["wrong-key", "no-key"])
def test_wrong_key_keeps_clusters_apart_and_is_counted(
    cluster: Cluster, our_key: str | None
) -> None:
    a = cluster.start_serf("a", encrypt=KEY)
    keyring = [base64.b64decode(our_key)] if our_key else None

    async def scenario() -> None:
        async with local_agent("py", keyring=keyring) as py:
            with pytest.raises(JoinError):
                await py.join([a.addr])

            def serf_joins_py() -> None:
                with a.rpc() as rpc, pytest.raises(RuntimeError):
                    rpc.call("join", {"Existing": [addr(py)], "Replay": False}, reply=True)

            await asyncio.to_thread(serf_joins_py)
            # serf's push/pull (encrypted with a key we lack) was rejected and counted here
            await until(lambda: py.drops.get("decrypt", 0) >= 1, 5, f"decrypt drops {py.drops}")
            await asyncio.sleep(1.0)
            assert alive_names(py) == {"py"}
            assert set(await asyncio.to_thread(a.statuses)) == {"a"}

    asyncio.run(scenario())


@pytest.mark.parametrize("serf_compression", [True, False], ids=["serf-lzw", "serf-plain"])
@pytest.mark.parametrize("our_compression", [True, False], ids=["py-lzw", "py-plain"])
def test_compression_on_and_off(
    cluster: Cluster, serf_compression: bool, our_compression: bool
) -> None:
    a = cluster.start_serf("a", compression=serf_compression)
    b = cluster.start_serf("b", [a.addr], compression=serf_compression)
    config = Config.local(enable_compression=our_compression)

    async def scenario() -> None:
        async with local_agent("py", config=config) as py:
            log = EventLog(py)
            await py.join([a.addr])
            await until(lambda: alive_names(py) == {"a", "b", "py"}, 10, "py joined")
            # gossip from serf to us: a user event (inside compound/compressed packets)
            await asyncio.to_thread(b.user_event, "ping-us", b"x" * 300)
            await until(lambda: log.of(UserEventReceived), 10, "serf user event at py")
            assert log.of(UserEventReceived)[0].payload == b"x" * 300
            # gossip from us to serf: a Serf user event we originate
            py.user_event("from-py", b"y" * 300, coalesce=False)
            await until(
                lambda: any(e[1] == "user" and "from-py" in e[2] for e in a.handler_events()),
                10,
                "a ran its handler",
            )
            await until(lambda: b.statuses().get("py") == "alive", 35, "b sees py", blocking=True)
            await log.stop()
        assert _serf_errors(cluster) == []

    asyncio.run(scenario())


def test_tags_both_ways(cluster: Cluster) -> None:
    a = cluster.start_serf("a", tags={"role": "web", "dc": "eu"})

    async def scenario() -> None:
        async with local_agent("py", tags={"role": "py", "zone": "z1"}) as py:
            await py.join([a.addr])

            def serf_tags_of_py() -> dict[str, str]:
                rows = {m["name"]: m for m in a.members_cli()}
                return rows.get("py", {}).get("tags") or {}

            await until(
                lambda: serf_tags_of_py() == {"role": "py", "zone": "z1"},
                10,
                "serf members shows our tags",
                blocking=True,
            )
            a_member = next(m for m in py.members() if m.name == "a")
            assert decode_tags(a_member.meta) == {"role": "web", "dc": "eu"}
            # our tag update reaches serf (as a member-update)
            py.update_tags({"role": "py", "zone": "z2"})
            await until(
                lambda: serf_tags_of_py() == {"role": "py", "zone": "z2"},
                10,
                "serf sees updated tags",
                blocking=True,
            )
            # serf's tag update reaches us
            await asyncio.to_thread(a.set_tags, {"dc": "us"})

            def a_tags() -> dict[str, str]:
                return decode_tags(next(m for m in py.members() if m.name == "a").meta)

            await until(lambda: a_tags() == {"role": "web", "dc": "us"}, 10, "py sees a's tags")

    asyncio.run(scenario())


def test_serf_user_state_in_push_pull_merges_cleanly(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])
    c = cluster.start_serf("c", [a.addr])
    with a.rpc() as rpc:
        for i in range(3):
            rpc.user_event(f"ev{i}", f"payload{i}".encode())
    c.leave()
    from bench.serf_harness import wait_for

    wait_for(lambda: a.statuses().get("c") == "left", 15, what="c left")

    async def scenario() -> None:
        async with local_agent("py") as py:
            log = EventLog(py)
            await py.join([b.addr])  # b's push/pull: 3 events in the ring, c in LeftMembers
            await until(lambda: len(log.of(UserEventReceived)) == 3, 5, "replayed events")
            assert {e.name for e in log.of(UserEventReceived)} == {"ev0", "ev1", "ev2"}
            # memberlist ignores a left member it never knew; Serf's LeftMembers recorded it
            assert states(py).get("c") in (None, MemberState.LEFT)
            assert alive_names(py) == {"a", "b", "py"}
            serf_drops = {k: v for k, v in py.drops.items() if k.startswith("serf_")}
            assert serf_drops == {}
            # a serf agent joining through us merges our state (with the clocks we witnessed)
            d = await asyncio.to_thread(cluster.start_serf, "d", [addr(py)])
            await until(lambda: d.statuses().get("b") == "alive", 10, "d joined", blocking=True)
            with d.rpc() as rpc:
                stats = await asyncio.to_thread(rpc.stats)
            assert int(stats["serf"]["event_time"]) >= 4  # witnessed from our state
            await log.stop()
        assert _serf_errors(cluster) == []

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", ["2", "4"])
def test_older_serf_protocol_versions(cluster: Cluster, protocol: str) -> None:
    """Serf protocol 2 writes the bare role as Meta; 4 predates relayed responses."""
    a = cluster.start_serf("a", extra=[f"-protocol={protocol}"])
    b = cluster.start_serf("b", [a.addr], tags={"role": "web"}, extra=[f"-protocol={protocol}"])

    async def scenario() -> None:
        async with local_agent("py", tags={"role": "py"}) as py:
            await py.join([a.addr])
            await until(lambda: alive_names(py) == {"a", "b", "py"}, 10, "py joined")
            await until(lambda: b.statuses().get("py") == "alive", 35, "b sees py", blocking=True)
            rows = {m["name"]: m for m in await asyncio.to_thread(b.members_cli)}
            assert rows["py"]["tags"] == {"role": "py"}
            b_meta = next(m for m in py.members() if m.name == "b").meta
            if protocol == "2":
                assert b_meta == b"web"  # protocol 2: the role itself, no 0xFF map
            assert decode_tags(b_meta) == {"role": "web"}
        assert _serf_errors(cluster) == []

    asyncio.run(scenario())


def test_cluster_label_does_not_interoperate_with_memberlist_0_2_2(cluster: Cluster) -> None:
    """Labels are memberlist >= 0.3; Debian's serf drops labelled streams and packets."""
    a = cluster.start_serf("a")

    async def scenario() -> None:
        async with local_agent("py", label=b"prod") as py:
            with pytest.raises(JoinError):
                await py.join([a.addr])
            await asyncio.sleep(0.5)
            assert set(await asyncio.to_thread(a.statuses)) == {"a"}

    asyncio.run(scenario())
