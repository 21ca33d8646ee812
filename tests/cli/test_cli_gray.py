"""`swimguard agent --slow*`: mlnode's gray-failure flags on a real agent process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

AGENT = [sys.executable, "-m", "swimguard", "agent", "--name", "g", "--bind", "127.0.0.1:0",
         "--log-level", "WARNING", "--rpc-addr", "", "--no-serf"]  # fmt: skip


def test_slow_agent_prints_mlnode_s_schedule_for_the_same_seed() -> None:
    proc = subprocess.Popen(
        [*AGENT, "--slow", "--slow-seed", "42", "--slow-on", "0.2,0.5", "--slow-off", "0.1,0.3"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lengths: list[str] = []
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            m = re.match(r"GRAY g slow=(on|off) t=\d+\.\d{6} for=(\d+\.\d{3})", line)
            if m:
                lengths.append(m.group(2))
            if len(lengths) == 4:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert lines[0].startswith("GRAY g schedule origin=")
    assert "seed=42 mean=2s on=0.2,0.5 off=0.1,0.3" in lines[0]
    # The `for=` values tools/mlnode prints with -seed 42 and the same ranges.
    assert lengths == ["0.248", "0.156", "0.303", "0.108"]
    assert any("packets{n=" in line for line in lines)


def test_bad_slow_origin_is_a_usage_error() -> None:
    done = subprocess.run(
        [*AGENT, "--slow", "--slow-at", "-3"], capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--slow" in done.stderr
    assert "Traceback" not in done.stderr
