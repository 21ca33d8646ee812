"""`swimguard agent` when its event output fails: closed, full, or a broken pipe.

The agent refuses to start without a stdout, and when writing fails later it says
so once on stderr, leaves the cluster gracefully and exits 4 (`ExitCode.OUTPUT_FAILED`),
never with a traceback or Python's "Exception ignored" at exit.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from swimguard.cli import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

AGENT = [sys.executable, "-m", "swimguard", "agent", "--bind", "127.0.0.1:0",
         "--profile", "local", "--log-level", "WARNING", "--leave-timeout", "1",
         "--rpc-addr", ""]


def clean_failure(stderr: str) -> str:
    """The one line saying stdout failed; nothing else alarming on stderr."""
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    lines = [line for line in stderr.splitlines() if "stdout" in line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_closed_stdout_refuses_to_start() -> None:
    result = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *AGENT, "--name", "closed"],
        capture_output=False, stderr=subprocess.PIPE, text=True, timeout=30,
    )
    assert result.returncode == ExitCode.OUTPUT_FAILED == 4
    assert "stdout is closed" in clean_failure(result.stderr)
    assert result.stderr.count("\n") == 1  # nothing was started, nothing else said


def test_full_disk_on_stdout_leaves_and_exits_4() -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run([*AGENT, "--name", "full"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=30)
    assert result.returncode == ExitCode.OUTPUT_FAILED
    line = clean_failure(result.stderr)
    assert "No space left on device" in line
    assert "cannot start" not in result.stderr


def test_a_pipe_whose_reader_goes_away_leaves_and_exits_4() -> None:
    watched = subprocess.Popen([*AGENT, "--name", "watched"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    joiner: subprocess.Popen[str] | None = None
    try:
        assert watched.stdout is not None
        assert watched.stderr is not None
        own = json.loads(watched.stdout.readline())  # its own join, then the reader leaves
        watched.stdout.close()
        # The next event (a member joining) finds the pipe broken.
        joiner = subprocess.Popen([*AGENT, "--name", "joiner", "--join", own["addr"]],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        assert watched.wait(60) == ExitCode.OUTPUT_FAILED
        assert "Broken pipe" in clean_failure(watched.stderr.read())
        # It left gracefully: the joiner sees it leave, not fail.
        assert joiner.stdout is not None
        verdict = None
        for raw in joiner.stdout:
            event = json.loads(raw)
            if event["name"] == "watched" and event["event"] in ("member-leave", "member-failed"):
                verdict = event["event"]
                break
        assert verdict == "member-leave"
    finally:
        for proc in (watched, joiner):
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"])
def test_keygen_that_cannot_write_its_key_exits_4(redirect: str) -> None:
    result = subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "swimguard", "keygen"],
        stderr=subprocess.PIPE, text=True, timeout=30,
    )
    assert result.returncode == ExitCode.OUTPUT_FAILED
    assert "cannot write the key to stdout" in clean_failure(result.stderr)
