"""`python -m swimguard.demo` (what `make demo` runs) finishes well within a minute."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from swimguard.cli import event_line
from swimguard.protocol.events import MemberFailed, MemberJoined, UserMessage
from swimguard.protocol.members import Member, MemberState


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
    member = Member("a", ("::1", 7946), 3, MemberState.DEAD)
    line = event_line(MemberFailed(member), 12.5)
    assert line == (
        '{"ts": 12.5, "event": "member-failed", "name": "a", "addr": "[::1]:7946", '
        '"incarnation": 3}'
    )
    assert event_line(MemberJoined(member), 1.0) is not None
    assert event_line(UserMessage(b"x"), 1.0) is None
