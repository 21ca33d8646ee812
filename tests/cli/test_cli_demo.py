"""`python -m swimguard.demo` (what `make demo` runs) finishes well within a minute."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from swimguard.cli import event_line
from swimguard.protocol.events import MemberFailed, MemberJoined, MemberUpdated, UserMessage
from swimguard.protocol.members import Member, MemberState
from swimguard.serf import encode_tags
from swimguard.serf.events import QueryReceived, UserEventReceived
from swimguard.serf.messages import Query


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_demo_runs_the_scenario_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "swimguard.demo"], capture_output=True, text=True, timeout=80
    )
    print(result.stdout)  # shown by pytest when the test fails
    print(result.stderr, file=sys.stderr)
    assert result.returncode == 0
    out = result.stdout
    assert "All 5 agents see each other" in out
    assert len(re.findall(r"declared node5 failed after \d+\.\d+s", out)) == 4
    assert len(re.findall(r"saw node4 leave after", out)) == 3
    assert "node4 exited with status 0" in out
    assert "also reported it failed" not in out


def test_event_line_has_exactly_the_documented_keys() -> None:
    member = Member("a", ("::1", 7946), 3, MemberState.DEAD, meta=encode_tags({"role": "db"}))
    line = event_line(MemberFailed(member), 12.5)
    assert line == (
        '{"ts": 12.5, "event": "member-failed", "name": "a", "addr": "[::1]:7946", '
        '"incarnation": 3, "tags": {"role": "db"}, "status": "failed"}'
    )
    assert event_line(MemberJoined(member), 1.0) is not None
    assert event_line(UserMessage(b"x"), 1.0) is None


def test_event_line_status_is_serfs() -> None:
    statuses = {
        state: json.loads(event_line(MemberUpdated(Member("a", ("h", 1), 1, state)), 1.0) or "")
        for state in MemberState
    }
    assert {s: line["status"] for s, line in statuses.items()} == {
        MemberState.ALIVE: "alive", MemberState.SUSPECT: "alive",
        MemberState.DEAD: "failed", MemberState.LEFT: "left",
    }
    assert statuses[MemberState.ALIVE]["tags"] == {"role": ""}  # a memberlist peer, as in Serf


def test_event_lines_for_user_events_and_queries() -> None:
    user = event_line(UserEventReceived("deploy", b"\x00v1", 7, True), 2.0)
    assert user == (
        '{"ts": 2.0, "event": "user", "name": "deploy", "payload": "AHYx", "ltime": 7, '
        '"coalesce": true}'
    )
    query = event_line(QueryReceived(Query(4, 99, "ping", payload=b"hi")), 3.0)
    assert query == (
        '{"ts": 3.0, "event": "query", "name": "ping", "payload": "aGk=", "ltime": 4}'
    )
    assert event_line(QueryReceived(Query(4, 99, "_serf_ping")), 3.0) is None
