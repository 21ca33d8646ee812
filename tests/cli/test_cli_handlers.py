"""`swimguard agent --event-handler`: real scripts run by a real agent process."""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import sys

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
