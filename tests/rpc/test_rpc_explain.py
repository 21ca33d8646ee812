"""Our `explain` RPC extension, `Client.explain`, `swimguard explain` and the `health`
section of `swimguard info` (never of the `stats` reply, which keeps serf's sections),
against real agents (and a backend that cannot explain)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rpc_support import AgentProcess, FakeBackend, RawClient, run, serve

from swimguard.rpc import BackendError
from swimguard.rpc.client import Client, RpcClientError
from swimguard.rpc.explain_cmd import explain_story, stats_health

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SERF_SECTIONS = {"agent", "runtime", "serf", "tags", "event_handlers"}


async def _until_member(client: Client, name: str) -> None:
    # Readiness polling, not a timing assertion: the join's push-pull lands soon.
    for _ in range(600):
        if any(m.name == name and m.status == "alive" for m in await client.members()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never became alive")


@pytest.fixture
def pair() -> Any:
    a = AgentProcess("ea")
    b = AgentProcess("eb")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_explain_ourselves_and_a_peer_through_the_client(pair: Any) -> None:
    a, b = pair

    async def body() -> None:
        async with Client("127.0.0.1", a.rpc_port) as client:
            assert await client.join([b.addr]) == 1
            await _until_member(client, "eb")
            me = await client.explain("ea")
            assert me["name"] == "ea"
            assert me["is_self"] is True
            assert me["state"] == "alive"
            assert isinstance(me["health_score"], int)
            assert me["health_max"] >= 1
            peer = await client.explain("eb")
            assert peer["name"] == "eb"
            assert peer["is_self"] is False
            assert peer["state"] == "alive"
            assert peer["health_score"] is None
            with pytest.raises(RpcClientError, match="Unknown member: nobody"):
                await client.explain("nobody")
            # The connection survives the error: the next command is answered.
            assert (await client.explain("ea"))["name"] == "ea"
            stats = await client.stats()
            assert set(stats) == SERF_SECTIONS  # exactly serf's: `serf info` prints them all
            assert stats["serf"]["health_score"] == str(me["health_score"])
            assert all(isinstance(v, str) for s in stats.values() for v in s.values())

    run(body)


def test_swimguard_explain_cli_json_and_text(pair: Any) -> None:
    a, _ = pair
    base = [sys.executable, "-m", "swimguard", "explain", "-rpc-addr", f"127.0.0.1:{a.rpc_port}"]
    as_json = subprocess.run([*base, "-format", "json", "ea"], capture_output=True, text=True,
                             timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["name"] == "ea"
    assert data["is_self"] is True
    text = subprocess.run([*base, "ea"], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("ea (ourselves) is alive at incarnation")
    assert "health score" in text.stdout
    unknown = subprocess.run([*base, "ghost"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1
    assert "Unknown member: ghost" in unknown.stdout
    assert "Traceback" not in unknown.stderr


def test_swimguard_info_adds_our_health_after_serfs_sections(pair: Any) -> None:
    a, _ = pair
    base = [sys.executable, "-m", "swimguard", "info", "-rpc-addr", f"127.0.0.1:{a.rpc_port}"]
    as_json = subprocess.run([*base, "-format", "json"], capture_output=True, text=True,
                             timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    info = json.loads(as_json.stdout)
    assert set(info) == SERF_SECTIONS | {"health"}
    health = info["health"]
    assert set(health) == {"score", "max", "fence_in", "at_max_for"}
    assert health["score"] == info["serf"]["health_score"]
    assert health["fence_in"] == ""  # --self-fence-after is off
    text = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    sections = [ln[:-1] for ln in text.stdout.splitlines() if ln and not ln[0].isspace()]
    assert sections == sorted(SERF_SECTIONS | {"health"})
    assert f"\tscore = {health['score']}" in text.stdout


class _CannotExplain(FakeBackend):
    def explain(self, name: str) -> None:
        raise BackendError(f"cannot explain {name}")


def test_a_backend_error_is_the_reply_error_with_an_empty_body() -> None:
    async def body() -> None:
        server = await serve(_CannotExplain())
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            reply = await client.call("explain", 1, {"Name": "x"}, replies=2)
            assert reply == [{"Error": "cannot explain x", "Seq": 1}, {}]
            # A Name that is not a string is a protocol violation: hang up, as Serf does.
            await client.send({"Command": "explain", "Seq": 2}, {"Name": 5})
            assert await client.closed()
            assert server.drops["protocol_violations"] == 1
        finally:
            await client.aclose()
            await server.close()

    run(body)


def test_story_of_a_suspected_member_says_who_and_why() -> None:
    data = {
        "name": "b", "now": 100.0, "is_self": False, "state": "suspect", "incarnation": 3,
        "since": 98.0, "death": None, "changes": [], "health_score": None,
        "probes": [{"kind": "direct", "ok": False, "at": 97.5, "rtt": None}],
        "suspicion": {
            "accuser": "c", "source": "probe", "started": 98.0, "wanted": 3,
            "confirmations": [{"by": "d", "at": 99.0}], "timeout": 4.0, "min_timeout": 2.0,
            "max_timeout": 12.0, "deadline": 102.0, "ended": None, "ended_at": None,
            "why": "1 of 3 confirmations",
        },
    }
    story = explain_story(data)
    assert story.splitlines()[0] == "b is suspect at incarnation 3"
    assert "since 2.0 s ago" in story
    assert "suspected by c (probe) 2.0 s ago" in story
    assert "confirmed by d 1.0 s ago" in story
    assert "expires in 2.0 s" in story
    assert "last direct probe failed 2.5 s ago" in story


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                     st.binary())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_FIELDS = st.sampled_from([
    "name", "now", "is_self", "state", "incarnation", "since", "health_score", "health_max",
    "at_max_since", "fence_at", "health_changes", "suspicion", "death", "probes", "changes",
    "delta", "at", "rtt", "confirmations", "ended", "deadline", "timeout", "why",
])


@given(st.dictionaries(_FIELDS, _VALUES | st.dictionaries(_FIELDS, _VALUES, max_size=6)
                       | st.lists(st.dictionaries(_FIELDS, _VALUES, max_size=6), max_size=3),
                       max_size=12))
@settings(max_examples=300, deadline=None)
def test_a_hostile_reply_reads_as_a_story_never_an_exception(data: dict[str, Any]) -> None:
    story = explain_story(data)
    assert all(c.isprintable() for line in story.splitlines() for c in line)
    stats_health(data)  # strings or empty, never an exception
