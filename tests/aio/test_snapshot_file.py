"""SnapshotFile and read_snapshot on a real disk: hostile files, write errors, atomic rewrite."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimguard.aio import Agent
from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.snapshot_file import SnapshotFile, read_snapshot
from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.serf.snapshot import MAX_LINE_BYTES, SnapshotRecorder

_chunk = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [b"alive: a 127.0.0.1:1\n", b"not-alive: a\n", b"leave\n", b"clock: 7\n", b"\n", b"\r"]
    ),
    st.integers(MAX_LINE_BYTES - 2, MAX_LINE_BYTES * 3).map(lambda n: b"z" * n),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_chunk, max_size=30))
def test_any_file_reads_without_raising_and_keeps_only_writable_state(chunks: list[bytes]) -> None:
    raw = b"".join(chunks)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.snap"
        path.write_bytes(raw)
        rec = read_snapshot(path, rejoin_after_leave=False)
        assert rec.offset == len(raw)
        # what was kept writes back and reads again to the same state, with no problem
        again = SnapshotRecorder()
        again.replay("".join(rec.compacted()).encode().splitlines(keepends=True))
        assert again.alive == rec.alive
        assert not again.problems


def test_a_missing_file_is_an_empty_snapshot(tmp_path: Path) -> None:
    rec = read_snapshot(tmp_path / "none", rejoin_after_leave=False)
    assert (rec.alive, rec.offset, rec.last_clock) == ({}, 0, 0)


def test_a_failed_write_is_counted_and_the_next_flush_rewrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.snap"

    async def scenario() -> None:
        rec = SnapshotRecorder()
        snap = SnapshotFile(path, rec)
        snap.open()
        snap.append(rec.on_alive("a", "127.0.0.1", 1, member_clock=3))
        assert snap._fh is not None
        snap._fh.close()
        snap._fh = path.open("rb")  # every write now fails (io.UnsupportedOperation)
        await snap.flush()
        assert snap.write_errors == 1
        assert path.read_text() == ""
        snap.append(rec.on_user_event(5))  # not queued: the rewrite will hold it
        await snap.flush()
        assert snap.compactions == 1
        assert path.read_text() == (
            "alive: a 127.0.0.1:1\nclock: 2\nevent-clock: 5\nquery-clock: 0\n"
        )
        await snap.close()

    asyncio.run(scenario())


def test_unusable_snapshot_settings_refuse_to_start(tmp_path: Path) -> None:
    async def start(**kwargs: object) -> str:
        agent = Agent("a", config=Config.local(), **kwargs)  # type: ignore[arg-type]
        with pytest.raises(UsageError) as info:
            await agent.start()
        await agent.close()
        return str(info.value)

    async def scenario() -> None:
        as_dir = AgentConfig(snapshot_path=str(tmp_path))
        assert f"snapshot {tmp_path}: Is a directory" in await start(options=as_dir)
        plain = AgentConfig(snapshot_path=str(tmp_path / "x.snap"))
        assert "needs serf_compat" in await start(options=plain, serf_compat=False)

    asyncio.run(scenario())


def test_a_file_torn_mid_line_is_rewritten_before_anything_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "t.snap"
    path.write_bytes(b"alive: a 127.0.0.1:1\nquery-clock: 4")  # a crash mid-write
    rec = read_snapshot(path, rejoin_after_leave=False)
    assert rec.torn
    assert rec.last_query_clock == 0  # the fragment may be cut short: not trusted
    assert rec.problems == {"torn_line": 1}

    async def scenario() -> None:
        snap = SnapshotFile(path, rec)
        snap.open()
        snap.append(rec.on_alive("b", "127.0.0.1", 2, member_clock=1))
        await snap.close()

    asyncio.run(scenario())
    assert path.read_text() == (
        "alive: a 127.0.0.1:1\nalive: b 127.0.0.1:2\nclock: 0\nevent-clock: 0\nquery-clock: 0\n"
    )
    assert not read_snapshot(path, rejoin_after_leave=False).torn
    long_tail = tmp_path / "l.snap"
    long_tail.write_bytes(b"clock: 1\n" + b"x" * (MAX_LINE_BYTES * 2))
    assert read_snapshot(long_tail, rejoin_after_leave=False).torn
    long_tail.write_bytes(b"x" * (MAX_LINE_BYTES * 2) + b"\nclock: 1\n")
    assert not read_snapshot(long_tail, rejoin_after_leave=False).torn
