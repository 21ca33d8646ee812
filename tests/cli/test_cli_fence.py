"""`swimguard agent --self-fence-after`: a process whose loop keeps freezing leaves and exits 75."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from test_cli_agents import AgentProcess, spawn, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

__all__ = ["spawn"]  # the fixture, used by name


def test_frozen_again_and_again_the_agent_fences_itself_and_exits_75(
    spawn: Callable[..., AgentProcess],
) -> None:
    a = spawn("g1")
    wait_until(lambda: bool(a.addr), 15, "g1 up")
    b = spawn("g2", "--join", a.addr, "--self-fence-after", "2", "--log-level", "ERROR")
    wait_until(lambda: a.saw("member-join", "g2"), 15, "g2 joined")
    # SIGSTOP freezes the whole process, its event loop included: 0.5 s in every 0.55 s.
    for _ in range(150):
        if b.proc.poll() is not None:
            break
        os.kill(b.proc.pid, signal.SIGSTOP)
        time.sleep(0.5)
        os.kill(b.proc.pid, signal.SIGCONT)
        time.sleep(0.05)
    assert b.proc.wait(30) == 75
    assert b.proc.stderr is not None
    err = b.proc.stderr.read()
    assert "self-fencing" in err, err
    wait_until(lambda: a.saw("member-leave", "g2"), 15, "g1 sees g2 leave")
    assert not a.saw("member-failed", "g2")
    assert a.proc.poll() is None
