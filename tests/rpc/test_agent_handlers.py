"""Event handler scripts: Serf's environment and stdin (compared with a serf agent's
captured handler.log), the query response, and scripts that hang, fail or flood."""

from __future__ import annotations

import asyncio
import functools
import pathlib
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest

from swimguard.agent_handlers import (
    OUTPUT_LIMIT,
    EventHandlerRunner,
    HandlerJob,
    handler_job,
    parse_handler_spec,
)
from swimguard.protocol.events import MemberJoined, MemberSuspected, MemberUpdated
from swimguard.protocol.members import Member, MemberState
from swimguard.rpc.agent_backend import AgentBackend
from swimguard.rpc.event_filter import EventKind
from swimguard.serf import encode_tags
from swimguard.serf.events import QueryReceived, UserEventReceived
from swimguard.serf.messages import Query

DATA = pathlib.Path(__file__).parent / "data"

# The script serf ran for handler.log: a header, the SERF_ variables sorted, stdin as
# od -c. `*=` because the script has an `=` in it: Serf would take `{ echo "` as a filter.
DUMP = (
    '*={{ echo "=== SERF_EVENT=$SERF_EVENT"; env | grep ^SERF_ | LC_ALL=C sort; '
    'echo "--- stdin:"; od -c; echo "--- end"; }} >> {log}'
)


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (pytest sees the wrapped signature)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def _job(event: object, self_name: str, tags: dict[str, str]) -> HandlerJob | None:
    """The job for an agent event, made from the Serf record the CLI's backend makes."""
    record = AgentBackend(cast(Any, None)).observe(event)
    return None if record is None else handler_job(record, self_name, tags)


def _member(name: str, tags: dict[str, str]) -> Member:
    return Member(name, ("127.0.0.1", 7946), 1, MemberState.ALIVE, meta=encode_tags(tags))


_OD_ESCAPES = {"\\t": "\t", "\\n": "\n", "\\0": "\0"}


def _blocks(text: str) -> list[tuple[str, bytes]]:
    """Each handler run: its header and environment as printed, and its stdin
    (decoded from `od -c`, member lines' TAGS sorted: Go's map order is random)."""
    blocks = []
    for block in text.split("=== ")[1:]:
        env, _, dump = block.partition("--- stdin:\n")
        stdin = ""
        for line in dump.split("\n"):
            if line.startswith("--- end"):
                break
            cells = line[7:]
            for i in range(0, len(cells), 4):
                stdin += _OD_ESCAPES.get(cells[i:i + 4].strip(), cells[i + 3])
        lines = []
        for member in stdin.splitlines(keepends=True):
            fields = member.rstrip("\n").split("\t")
            if env.startswith("SERF_EVENT=member") and len(fields) == 4:
                fields[3] = ",".join(sorted(fields[3].split(",")))
                member = "\t".join(fields) + "\n"
            lines.append(member)
        blocks.append((env, "".join(lines).encode()))
    return blocks


def _query(name: str, payload: bytes, answers: list[bytes], ltime: int = 1) -> QueryReceived:
    return QueryReceived(Query(ltime, 7, name, payload=payload), None, answers.append)


async def _run(tmp_path: pathlib.Path, jobs: list[object], self_tags: dict[str, str]) -> str:
    log = tmp_path / "handler.log"
    runner = EventHandlerRunner([parse_handler_spec(DUMP.format(log=log))])
    for event in jobs:
        job = _job(event, "a", self_tags)
        assert job is not None
        runner.submit(job)
    await runner.idle()
    await runner.close()
    return log.read_text()


@sync
async def test_env_and_stdin_match_serf_for_member_events(tmp_path: pathlib.Path) -> None:
    captured = _blocks((DATA / "handler.log").read_text())
    tags = {"role": "web", "dc": "x1"}
    got = _blocks(await _run(tmp_path, [
        MemberJoined(_member("a", tags)), MemberJoined(_member("b", {"role": "db"})),
    ], tags))
    assert got == captured[:2]
    tags = {"role": "web", "ver": "2"}
    got = _blocks(await _run(tmp_path, [MemberUpdated(_member("a", tags))], tags))
    assert got[-1] == captured[3]


@sync
async def test_env_and_stdin_match_serf_for_user_events_and_queries(
    tmp_path: pathlib.Path,
) -> None:
    captured = _blocks((DATA / "handler.log").read_text())
    tags = {"role": "web", "ver": "2"}
    answers: list[bytes] = []
    got = _blocks(await _run(tmp_path, [
        UserEventReceived("ping", b"", 2, True),
        UserEventReceived("deploy", b"v1", 1, True),
        _query("ping-app", b"hi", answers),
        _query("ping-stream", b"yo\n", answers, ltime=2),
    ], tags))
    assert got == [captured[2], captured[4], captured[5], captured[6]]
    assert answers == []  # the dump script writes to its log, not its stdout


@sync
async def test_query_output_is_the_response(tmp_path: pathlib.Path) -> None:
    answers: list[bytes] = []
    runner = EventHandlerRunner([
        parse_handler_spec('query:ping=echo "pong from $SERF_SELF_NAME: $(cat)"'),
        parse_handler_spec("query:other=echo no"),
    ])
    for event in (_query("ping", b"hi", answers), _query("quiet", b"", answers)):
        job = _job(event, "a", {})
        assert job is not None
        runner.submit(job)
    await runner.idle()
    await runner.close()
    assert answers == [b"pong from a: hi\n"]


@sync
async def test_failing_script_does_not_answer_and_is_counted(tmp_path: pathlib.Path) -> None:
    answers: list[bytes] = []
    runner = EventHandlerRunner([parse_handler_spec("echo partial; exit 3")])
    job = _job(_query("q", b"", answers), "a", {})
    assert job is not None
    runner.submit(job)
    await runner.idle()
    await runner.close()
    assert (runner.failed, answers) == (1, [])


@sync
async def test_output_keeps_the_last_8_kib() -> None:
    outputs: list[bytes] = []
    runner = EventHandlerRunner(
        [parse_handler_spec("head -c 20000 /dev/zero | tr '\\0' x; printf END")],
        on_output=lambda _spec, data: outputs.append(data),
    )
    job = _job(UserEventReceived("e", b"", 1, False), "a", {})
    assert job is not None
    runner.submit(job)
    await runner.idle()
    await runner.close()
    assert len(outputs[0]) == OUTPUT_LIMIT
    assert outputs[0].endswith(b"xEND")


@sync
async def test_oversized_query_output_is_refused_by_the_query_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(payload: bytes) -> None:
        raise ValueError("response exceeds limit of 1024 bytes")

    runner = EventHandlerRunner([parse_handler_spec("head -c 2000 /dev/zero")])
    job = _job(QueryReceived(Query(1, 1, "big"), None, refuse), "a", {})
    assert job is not None
    runner.submit(job)
    await runner.idle()
    await runner.close()
    assert "query response not sent: response exceeds limit" in caplog.text


@sync
async def test_hanging_script_is_killed_with_its_children(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    pids = tmp_path / "pids"
    runner = EventHandlerRunner(
        [parse_handler_spec(f"sleep 300 & echo $! > {pids}; wait")], timeout=1.5
    )
    job = _job(UserEventReceived("e", b"", 1, False), "a", {})
    assert job is not None
    runner.submit(job)
    await runner.idle()
    await runner.close()
    assert runner.timed_out == 1
    assert "still running after 1s" in caplog.text
    # SIGKILL to the group is delivered asynchronously: wait for the grandchild to go (a
    # generous bound for a loaded machine; it failed once when read right after close()).
    pid = int(pids.read_text())
    for _ in range(200):
        if _gone(pid):
            break
        await asyncio.sleep(0.05)
    assert _gone(pid)


def _gone(pid: int) -> bool:
    # The grandchild was in the script's process group: it is gone (or a zombie of init).
    stat = pathlib.Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ")[1][0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


@sync
async def test_full_queue_drops_and_counts_without_waiting() -> None:
    runner = EventHandlerRunner([parse_handler_spec("sleep 0.2")], queue_size=2)
    job = _job(UserEventReceived("e", b"", 1, False), "a", {})
    assert job is not None
    for _ in range(5):
        runner.submit(job)  # returns at once: the caller (the event fan-out) never waits
    await runner.idle()
    await runner.close()
    # The first job may already be taken from the queue when the others arrive.
    assert runner.dropped in (2, 3)
    assert runner.ran == 5 - runner.dropped


@sync
async def test_filters_select_events_and_replace_swaps_handlers(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "log"
    runner = EventHandlerRunner([parse_handler_spec(f"user:deploy=echo $SERF_USER_EVENT >> {log}")])
    for name in ("deploy", "other"):
        job = _job(UserEventReceived(name, b"", 1, False), "a", {})
        assert job is not None
        runner.submit(job)
    await runner.idle()
    runner.replace([parse_handler_spec(f"member-join,user=echo $SERF_EVENT >> {log}")])
    for event in (UserEventReceived("x", b"", 2, False), MemberJoined(_member("b", {}))):
        job = _job(event, "a", {})
        assert job is not None
        runner.submit(job)
    await runner.idle()
    await runner.close()
    assert log.read_text() == "deploy\nuser\nmember-join\n"


def test_parse_handler_spec() -> None:
    spec = parse_handler_spec("handler.sh")
    assert spec.script == "handler.sh"
    assert spec.filter.matches(EventKind.QUERY, "x")
    spec = parse_handler_spec("member-join,user:deploy=./h.sh")
    assert spec.script == "./h.sh"
    assert spec.filter.matches(EventKind.USER, "deploy")
    assert not spec.filter.matches(EventKind.USER, "other")
    for bad in ("bogus=h.sh", "user="):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_handler_spec(bad)


@sync
async def test_tag_names_become_env_names_and_stdin_is_escaped() -> None:
    tags = {"role": "r\tx", "dc-1.b": "v", "ÿ": "u"}
    job = _job(MemberJoined(_member("n\nm", tags)), "me", tags)
    assert job is not None
    assert job.env["SERF_TAG_DC_1_B"] == "v"
    assert job.env["SERF_SELF_ROLE"] == "r\tx"
    assert job.env["SERF_TAG__"] == "u"  # one `_` per character, as Go's regexp
    assert job.stdin == "n\\nm\t127.0.0.1\tr\\tx\tdc-1.b=v,role=r\\tx,ÿ=u\n".encode()


@sync
async def test_no_job_for_suspects_and_internal_queries() -> None:
    assert _job(MemberSuspected(_member("b", {})), "a", {}) is None
    assert _job(QueryReceived(Query(1, 1, "_serf_ping")), "a", {}) is None


@sync
async def test_member_events_are_coalesced_into_one_run_as_serf_does(
    tmp_path: pathlib.Path,
) -> None:
    log = tmp_path / "log"
    ran = asyncio.Event()
    runner = EventHandlerRunner(
        [parse_handler_spec(f"member-join,member-leave=echo $SERF_EVENT >> {log}; cat >> {log}")],
        self_info=lambda: ("a", {}),
        on_output=lambda _spec, _out: ran.set(),
    )
    backend = AgentBackend(cast(Any, None))
    for event in (MemberJoined(_member("b", {"role": "db"})), MemberJoined(_member("c", {})),
                  MemberUpdated(_member("b", {"role": "web"}))):
        record = backend.observe(event)
        assert record is not None
        runner.publish(record)
    assert runner.ran == 0  # held: 1 s of quiet, 3 s at most
    await ran.wait()  # after the quiet second: one run per event type that has a handler
    await runner.idle()
    await runner.close()
    # b's latest event is its update (no handler for it); c joined.
    assert log.read_text() == "member-join\nc\t127.0.0.1\t\t\n"
    assert runner.ran == 1


@sync
async def test_a_nul_from_gossip_fails_that_run_only(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "log"
    runner = EventHandlerRunner([parse_handler_spec(f"user=echo $SERF_USER_EVENT >> {log}")])
    for name in ("bad\x00name", "good"):
        job = _job(UserEventReceived(name, b"", 1, False), "a", {"t": "v"})
        assert job is not None
        runner.submit(job)
    await runner.idle()
    await runner.close()
    assert runner.failed == 1
    assert log.read_text() == "good\n"
