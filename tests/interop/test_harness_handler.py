"""The serf event handler script of bench/serf_harness.py (no serf needed)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.serf_harness import HANDLER


def _run_handler(tmp_path: Path, env: dict[str, str], stdin_data: bytes) -> Path:
    """Run the handler like serf does, writing stdin *after* it had time to exit."""
    script = tmp_path / "handler.sh"
    script.write_text(HANDLER)
    script.chmod(0o755)
    events = tmp_path / "events"
    proc = subprocess.Popen(
        [str(script), str(events)], stdin=subprocess.PIPE, env={**os.environ, **env}
    )
    assert proc.stdin is not None
    time.sleep(0.3)  # serf's payload goroutine may run after the script's echo
    # serf logs "[ERR] Error writing payload: broken pipe" if this write fails
    proc.stdin.write(stdin_data)
    proc.stdin.close()
    assert proc.wait(5) == 0
    return events


def test_user_event_handler_reads_its_payload(tmp_path: Path) -> None:
    events = _run_handler(
        tmp_path, {"SERF_EVENT": "user", "SERF_USER_EVENT": "deploy"}, b"x" * 300 + b"\n"
    )
    (line,) = events.read_text().splitlines()
    assert line.split(" ", 1)[1] == "user deploy"


def test_member_event_handler_logs_each_member(tmp_path: Path) -> None:
    events = _run_handler(
        tmp_path,
        {"SERF_EVENT": "member-failed"},
        b"c\t127.0.0.1\t\t\nd\t127.0.0.1\t\t\n",
    )
    lines = events.read_text().splitlines()
    assert [ln.split(" ", 2)[1:] for ln in lines] == [
        ["member-failed", "c\t127.0.0.1"],
        ["member-failed", "d\t127.0.0.1"],
    ]
