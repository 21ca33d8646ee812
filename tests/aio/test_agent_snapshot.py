"""Snapshots, rejoin, retry-join and the keyring file, with real agents on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from swimguard.aio import Agent
from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.keyring_file import read_keyring_file, write_keyring_file
from swimguard.aio.snapshot_file import SnapshotFile, read_snapshot
from swimguard.config import Config
from swimguard.errors import JoinError, UsageError
from swimguard.protocol.members import MemberState
from swimguard.serf import UserEventReceived
from swimguard.serf.snapshot import SnapshotRecorder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

K1 = bytes(range(32))
K2 = bytes(range(1, 33))


async def until(predicate: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    # A guard against hanging forever, not a timing assertion: it polls for an event.
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met: {what}")
        await asyncio.sleep(0.02)


class Events:
    """Every user event an agent delivers, in order."""

    def __init__(self, agent: Agent) -> None:
        self.names: list[str] = []
        self.task = asyncio.create_task(self._run(agent))

    async def _run(self, agent: Agent) -> None:
        async for event in agent.events():
            if isinstance(event, UserEventReceived):
                self.names.append(event.name)


def alive(agent: Agent, name: str) -> bool:
    return any(m.name == name and m.state == MemberState.ALIVE for m in agent.members())


def snap_options(path: Path, **kw: object) -> AgentConfig:
    return AgentConfig(snapshot_path=str(path), **kw)  # type: ignore[arg-type]


def test_restart_with_snapshot_rejoins_without_replaying_old_user_events(tmp_path: Path) -> None:
    snap = tmp_path / "b.snap"

    async def scenario() -> None:
        async with Agent("a", config=Config.local()) as a:
            b = Agent("b", config=Config.local(), options=snap_options(snap))
            await b.start()
            b_events = Events(b)
            await b.join([a.advertise_address])
            a.user_event("before", b"1")
            await until(lambda: b_events.names == ["before"], "b sees the first event")
            port = b.bound_address[1]
            await b.close()  # a crash: no leave, the snapshot keeps a
            text = snap.read_text()
            assert "alive: a 127.0.0.1:" in text
            assert "event-clock: " in text

            b2 = Agent(
                "b", bind=("127.0.0.1", port), config=Config.local(), options=snap_options(snap)
            )
            await b2.start()
            events = Events(b2)
            assert await b2.wait_rejoin() == "a"
            await until(lambda: alive(a, "b") and alive(b2, "a"), "rejoined")
            # the join's push/pull carried "before" again: dropped, not delivered
            assert b2.drops.get("serf_event_before_restart", 0) >= 1
            a.user_event("after", b"2")
            await until(lambda: "after" in events.names, "b sees the new event")
            assert events.names == ["after"]
            await b2.close()

    asyncio.run(scenario())


def test_graceful_leave_forgets_members_unless_rejoin(tmp_path: Path) -> None:
    async def run(rejoin: bool) -> str | None:
        snap = tmp_path / f"{rejoin}.snap"
        opts = snap_options(snap, rejoin_after_leave=rejoin)
        async with Agent("a", config=Config.local()) as a:
            async with Agent("b", config=Config.local(), options=opts) as b:
                await b.join([a.advertise_address])
                await until(lambda: alive(b, "a"), "joined")
                assert await b.leave(2.0)
            assert "leave" in snap.read_text().splitlines()
            async with Agent("b", config=Config.local(), options=opts) as b2:
                return await b2.wait_rejoin()

    async def scenario() -> None:
        assert await run(False) is None
        assert await run(True) == "a"

    asyncio.run(scenario())


def test_corrupt_snapshot_is_counted_and_the_good_lines_still_rejoin(tmp_path: Path) -> None:
    snap = tmp_path / "bad.snap"

    async def scenario() -> None:
        async with Agent("a", config=Config.local()) as a:
            host, port = a.advertise_address
            snap.write_bytes(
                b"alive: evil\nleave 127.0.0.1:1\n"
                b"\xff\xfe\x00garbage\n"
                b"alive: x\rleave 127.0.0.1:2\n"
                b"clock: 99999999999999999999999\n"
                + f"alive: a {host}:{port}\n".encode()
                + b"event-clock: 12\n"
                + b"y" * 100_000
                + b"\nquery-clock: nope"
            )
            async with Agent("b", config=Config.local(), options=snap_options(snap)) as b:
                assert await b.wait_rejoin() == "a"
                drops = b.drops
                assert drops["serf_snapshot_bad_name"] == 1
                assert drops["serf_snapshot_not_utf8"] == 1
                assert drops["serf_snapshot_bad_clock"] == 1
                assert drops["serf_snapshot_torn_line"] == 1  # "query-clock: nope", no newline
                assert drops["serf_snapshot_line_too_long"] == 1
                # "evil\nleave ..." is two lines: an alive without address, an unknown record
                assert drops["serf_snapshot_bad_alive"] == 1
                assert drops["serf_snapshot_unknown_record"] == 1
                node_clock = b._node.serf.event_clock.time()  # type: ignore[union-attr]
                assert node_clock >= 13

    asyncio.run(scenario())


def test_snapshot_file_compacts_atomically(tmp_path: Path) -> None:
    path = tmp_path / "c.snap"

    async def scenario() -> None:
        rec = SnapshotRecorder(min_compact_size=200)
        snap = SnapshotFile(path, rec)
        snap.append(rec.on_alive("a", "127.0.0.1", 1, member_clock=2))
        await snap.flush()
        for t in range(1, 40):
            snap.append(rec.on_query(t))
        await snap.flush()
        assert snap.compactions == 1
        assert not (tmp_path / "c.snap.compact").exists()
        assert path.read_text() == (
            "alive: a 127.0.0.1:1\nclock: 1\nevent-clock: 0\nquery-clock: 39\n"
        )
        snap.append(rec.on_user_event(4))
        await snap.close()
        again = read_snapshot(path, rejoin_after_leave=False)
        assert again.alive == {"a": "127.0.0.1:1"}
        assert (again.last_event_clock, again.last_query_clock) == (4, 39)

    asyncio.run(scenario())


def test_snapshot_buffer_is_bounded_and_rewrites_from_state(tmp_path: Path) -> None:
    path = tmp_path / "d.snap"

    async def scenario() -> None:
        rec = SnapshotRecorder()
        snap = SnapshotFile(path, rec, max_pending=10)
        for t in range(1, 100):
            snap.append(rec.on_user_event(t))
        await snap.close()
        assert path.read_text() == "clock: 0\nevent-clock: 99\nquery-clock: 0\n"

    asyncio.run(scenario())


def test_retry_join_gives_up_after_max_retries_and_succeeds_on_a_live_seed() -> None:
    async def scenario() -> None:
        # a port nobody listens on any more: every attempt fails
        dead = Agent("dead", config=Config.local())
        await dead.start()
        gone = dead.advertise_address
        await dead.close()
        async with Agent("a", config=Config.local()) as a, Agent("b", config=Config.local()) as b:
            with pytest.raises(JoinError):
                await b.retry_join([gone], interval=0.01, max_attempts=1)
            assert await b.retry_join([a.advertise_address], interval=0.01) == 1
            for bad in (-1.0, float("inf"), float("nan")):
                with pytest.raises(ValueError, match="must be >= 0"):
                    await b.retry_join([gone], interval=bad)

    asyncio.run(scenario())


def test_keyring_file_follows_key_rotation_and_restarts_with_it(tmp_path: Path) -> None:
    a_file, b_file = tmp_path / "a.keyring", tmp_path / "b.keyring"
    write_keyring_file(b_file, [K1])

    async def scenario() -> None:
        a_opts = AgentConfig(keyring_file=str(a_file))
        b_opts = AgentConfig(keyring_file=str(b_file))
        # a: the file does not exist yet, it is created from the key given
        async with Agent("a", config=Config.local(), keyring=[K1], options=a_opts) as a:
            assert read_keyring_file(a_file) == [K1]
            async with Agent("b", config=Config.local(), options=b_opts) as b:
                await b.join([a.advertise_address])
                await until(lambda: alive(a, "b") and alive(b, "a"), "joined")
                assert (await a.keys.install(base64.b64encode(K2).decode())).ok
                assert (await a.keys.use(K2)).ok
                await until(
                    lambda: (
                        read_keyring_file(b_file) == [K2, K1]
                        and read_keyring_file(a_file) == [K2, K1]
                    ),
                    "both files rotated",
                )
                assert (await a.keys.remove(K1)).ok
                await until(lambda: read_keyring_file(b_file) == [K2], "b's file lost K1")
                assert b_file.stat().st_mode & 0o777 == 0o600
                bind = b.bound_address
            # restarted from its file alone, b speaks K2 and rejoins a
            async with Agent("b", bind=bind, config=Config.local(), options=b_opts) as b2:
                assert await b2.join([a.advertise_address]) == 1

    asyncio.run(scenario())


def test_bad_keyring_files_are_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "k"

    async def start(content: str | None) -> str:
        if content is not None:
            path.write_text(content)
        elif path.exists():
            path.unlink()
        agent = Agent("a", config=Config.local(), options=AgentConfig(keyring_file=str(path)))
        with pytest.raises(UsageError) as info:
            await agent.start()
        await agent.close()
        return str(info.value)

    async def scenario() -> None:
        assert "does not exist" in await start(None)
        assert "not JSON" in await start("{")
        assert "non-empty JSON list" in await start("[]")
        assert "not base64" in await start('["!!"]')
        assert "16, 24 or 32" in await start(json.dumps([base64.b64encode(b"x").decode()]))
        assert "not a string" in await start("[1]")

    asyncio.run(scenario())
