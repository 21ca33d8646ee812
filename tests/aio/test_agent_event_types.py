"""`AgentEvent` is a closed union: exactly what `events()` yields, checkable by mypy.

An application's `match` over it with `assert_never` in the default case is accepted by
mypy only if it names every class, so a new event type cannot slip past it unnoticed.
"""

from __future__ import annotations

import typing

import pytest
from mypy import api as mypy_api

from swimguard.aio.agent_event import PUBLISHED, AgentEvent
from swimguard.aio.event_buffer import EventsLost

pytestmark = pytest.mark.timeout(300)


def test_the_union_is_what_the_router_publishes_plus_the_gap_marker() -> None:
    assert set(typing.get_args(AgentEvent)) == {*PUBLISHED, EventsLost}


def _handler(names: list[str]) -> str:
    cases = "\n".join(f"        case {name}():\n            return {name!r}" for name in names)
    return (
        "from typing import assert_never\n"
        "from swimguard.aio.agent_event import *\n"
        "from swimguard.aio.agent_event import AgentEvent\n"
        "from swimguard.aio.event_buffer import EventsLost\n"
        "from swimguard.protocol.events import *\n"
        "from swimguard.serf.events import *\n"
        "def handle(event: AgentEvent) -> str:\n"
        "    match event:\n"
        f"{cases}\n"
        "        case _:\n"
        "            assert_never(event)\n"
    )


def test_mypy_checks_a_match_over_agent_event_for_exhaustiveness(
    tmp_path: typing.Any,
) -> None:
    names = [cls.__name__ for cls in typing.get_args(AgentEvent)]
    config = tmp_path / "mypy.ini"  # not the project's, whose `files` would be checked too
    config.write_text("[mypy]\n")
    args = ["--config-file", str(config), "--strict", "--no-error-summary",
            "--cache-dir", str(tmp_path / "cache")]
    out, err, status = mypy_api.run([*args, "-c", _handler(names)])
    assert status == 0, out + err
    out, _err, status = mypy_api.run([*args, "-c", _handler(names[:-1])])
    assert status == 1
    assert "assert_never" in out
    assert names[-1] in out
