"""`swimguard agent --event-handler`: real scripts run by a real agent process."""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from swimguard.aio import Agent
from swimguard.config import Config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

AGENT = [sys.executable, "-m", "swimguard", "agent", "--bind", "127.0.0.1:0",
         "--profile", "local", "--log-level", "INFO", "--leave-timeout", "1",
         "--rpc-addr", ""]


def test_handlers_see_joins_and_answer_queries_while_a_hanging_one_is_killed(
    tmp_path: pathlib.Path,
) -> None:
    log = tmp_path / "joins"
    agent = subprocess.Popen(
        [*AGENT, "--name", "a", "--tag", "role=web",
         "--event-handler", f"member-join=cat >> {log}",
         "--event-handler", "query:ping=echo pong from $SERF_SELF_ROLE",
         "--event-handler", "query:hang=sleep 300",
         "--event-handler-timeout", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert agent.stdout is not None
        own = json.loads(agent.stdout.readline())

        async def peer() -> dict[str, bytes]:
            b = Agent("b", config=Config.local(), tags={"role": "db"})
            await b.start()
            try:
                await b.join([own["addr"]])
                b.user_event("deploy", b"v1", coalesce=False)
                # The hanging script holds the queue; the protocol answers pings all along,
                # and once it is killed the next script runs.
                hang = b.query("hang", timeout=0.5, filter_nodes=["a"])
                async for _ in hang:
                    pass
                handle = b.query("ping", timeout=10, expected=1, filter_nodes=["a"])
                async for _ in handle:
                    pass
                return dict(handle.responses)
            finally:
                await b.close()

        assert asyncio.run(peer()) == {"a": b"pong from web\n"}
        # Member events reach scripts coalesced (1 s of quiet): wait for both joins.
        while not log.exists() or log.read_text().count("\n") < 2:
            time.sleep(0.02)
        agent.terminate()
        out, err = agent.communicate(timeout=30)
        assert "Traceback" not in err
        # The same events on stdout, as JSON lines (issue 13 point 3).
        lines_out = [json.loads(line) for line in out.splitlines()]
        b_join = next(e for e in lines_out if e["name"] == "b")
        assert (b_join["event"], b_join["tags"], b_join["status"]) == (
            "member-join", {"role": "db"}, "alive"
        )
        assert [e["name"] for e in lines_out if e["event"] == "query"] == ["hang", "ping"]
        user = next(e for e in lines_out if e["event"] == "user")
        assert (user["name"], user["payload"], user["coalesce"]) == ("deploy", "djE=", False)
        assert "event handler 'query:hang=sleep 300' timed out" in err
        lines = sorted(log.read_text().splitlines())
        assert lines == ["a\t127.0.0.1\tweb\trole=web", "b\t127.0.0.1\tdb\trole=db"]
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait(10)
        for stream in (agent.stdout, agent.stderr):
            if stream is not None:
                stream.close()


def test_a_bad_handler_filter_is_a_usage_error() -> None:
    result = subprocess.run(
        [*AGENT, "--name", "a", "--event-handler", "user,bogus=true"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "--event-handler 'user,bogus=true': invalid event filter 'user,bogus'" in result.stderr


def _wait_for_file(path: pathlib.Path) -> None:
    while not path.exists() or not path.read_text().endswith("\n"):
        time.sleep(0.02)


def _stderr_until(agent: subprocess.Popen[str], text: str) -> str:
    """Read the agent's stderr line by line until one contains `text` (event-driven)."""
    assert agent.stderr is not None
    for line in agent.stderr:
        if text in line:
            return line
    raise AssertionError(f"stderr ended without {text!r}")


def test_config_file_flags_win_and_sighup_reloads_handlers_and_log_level(
    tmp_path: pathlib.Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    conf = tmp_path / "agent.json"
    conf.write_text(json.dumps({
        "node_name": "from-file", "bind": "127.0.0.1:0", "rpc_addr": "",
        "tags": {"role": "file", "dc": "x1"}, "log_level": "info",
        "event_handlers": [f"user=echo $SERF_USER_EVENT >> {first}"],
    }))
    agent = subprocess.Popen(
        [sys.executable, "-m", "swimguard", "agent", "--config-file", str(conf),
         "--profile", "local", "--leave-timeout", "1", "--tag", "role=flag"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert agent.stdout is not None
        own = json.loads(agent.stdout.readline())
        assert own["name"] == "from-file"
        assert own["tags"] == {"role": "flag", "dc": "x1"}  # the flag's role wins

        async def send(name: str) -> None:
            b = Agent("b-" + name, config=Config.local())
            await b.start()
            try:
                await b.join([own["addr"]])
                b.user_event(name, coalesce=False)
                await asyncio.sleep(0)
            finally:
                await b.leave(1.0)
                await b.close()

        def wait_user(name: str) -> None:
            assert agent.stdout is not None
            for raw in agent.stdout:
                event = json.loads(raw)
                if event["event"] == "user" and event["name"] == name:
                    return
            raise AssertionError(f"no user event {name}")

        asyncio.run(send("one"))
        wait_user("one")
        _wait_for_file(first)  # its script ran with the first handlers
        # SIGUSR1 is logged and ignored; a bad file on SIGHUP changes nothing.
        agent.send_signal(signal.SIGUSR1)
        _stderr_until(agent, "SIGUSR1 received: ignored")
        conf.write_text('{"node_name": "x", "colour": "blue"}')
        agent.send_signal(signal.SIGHUP)
        assert "unknown key 'colour'" in _stderr_until(agent, "not reloaded")
        conf.write_text(json.dumps({
            "node_name": "from-file", "bind": "127.0.0.1:0", "log_level": "warn",
            "event_handlers": [f"user=echo $SERF_USER_EVENT >> {second}"],
        }))
        agent.send_signal(signal.SIGHUP)
        _stderr_until(agent, "SIGHUP: reloaded the configuration: log level WARNING, 1 event")
        asyncio.run(send("two"))
        wait_user("two")
        _wait_for_file(second)
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        assert agent.returncode == 0
        assert "INFO" not in err  # the reloaded level (WARNING) holds until exit
        assert first.read_text() == "one\n"
        assert second.read_text() == "two\n"
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait(10)
        for stream in (agent.stdout, agent.stderr):
            if stream is not None:
                stream.close()


def test_config_file_errors_name_file_and_key(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "agent.json"
    conf.write_text('{"node_name": "a", "bind": "127.0.0.1:0", "data_dir": "/x"}')
    result = subprocess.run(
        [sys.executable, "-m", "swimguard", "agent", "--config-file", str(conf)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert f"{conf}: unknown key 'data_dir'" in result.stderr
    assert "Traceback" not in result.stderr
