"""serfclient 1.2.0 from PyPI (a Serf client we did not write) against `swimguard agent`."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from rpc_support import AgentProcess, eventually

with warnings.catch_warnings():
    # serfclient 1.2.0 reads its own version through pkg_resources: setuptools 80 warns
    # (an error under our filterwarnings) and 81 removed it, hence the pin in the test extra.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    from serfclient import SerfClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def agents() -> Iterator[tuple[AgentProcess, AgentProcess]]:
    started: list[AgentProcess] = []
    try:
        a = AgentProcess("a", "--tag", "role=web")
        started.append(a)
        b = AgentProcess("b", "--tag", "role=db", "--join", a.addr, rpc=False)
        started.append(b)
        yield a, b
    finally:
        for agent in started:
            agent.stop()


def _names(result: object) -> set[str]:
    body = result.body  # type: ignore[attr-defined]
    return {m["Name"] for m in body["Members"]}


def test_serfclient_members_event_join_stats(agents: tuple[AgentProcess, AgentProcess]) -> None:
    a, b = agents
    client = SerfClient("127.0.0.1", a.rpc_port)
    try:
        eventually(lambda: _names(client.members()) == {"a", "b"}, "a lists a and b")
        everyone = client.members()
        assert everyone.head == {"Error": "", "Seq": everyone.head["Seq"]}
        by_name = {m["Name"]: m for m in everyone.body["Members"]}
        assert by_name["b"]["Tags"] == {"role": "db"}
        assert by_name["b"]["Status"] == "alive"
        assert by_name["b"]["Port"] == b.port
        assert by_name["b"]["Addr"] == b"\x7f\x00\x00\x01"
        assert _names(client.members(name="b")) == {"b"}
        assert _names(client.members(status="alive")) == {"a", "b"}
        assert _names(client.members(tags={"role": "w.*"})) == {"a"}
        assert _names(client.members(tags={"role": "w"})) == set()  # anchored

        sent = client.event("deploy", b"v1", coalesce=False)
        assert sent.head["Error"] == ""
        refused = client.event("big", b"x" * 600)
        assert refused.head["Error"] == (
            "user event exceeds configured limit of 512 bytes before encoding"
        )

        joined = client.join([b.addr])
        assert joined.head["Error"] == ""
        assert joined.body == {"Num": 1}
        failed = client.join(["127.0.0.1:1"])
        assert failed.head["Error"].startswith("1 error occurred:\n\t* ")
        assert failed.body == {"Num": 0}

        stats = client.stats().body
        assert stats["agent"] == {"name": "a"}
        assert stats["tags"] == {"role": "web"}
        assert stats["serf"]["members"] == "2"
        # Serf's five sections exactly (our health is in `explain`).
        assert set(stats) == {"agent", "runtime", "serf", "tags", "event_handlers"}

        gone = client.force_leave("ghost")  # unknown names succeed, as on serf
        assert gone.head["Error"] == ""
        # The connection is still usable after an error.
        assert _names(client.members()) == {"a", "b"}
    finally:
        client.close()


def test_serfclient_stream_sees_user_and_member_events(
    agents: tuple[AgentProcess, AgentProcess],
) -> None:
    a, _ = agents
    watcher = SerfClient("127.0.0.1", a.rpc_port)
    sender = SerfClient("127.0.0.1", a.rpc_port)
    try:
        eventually(lambda: _names(sender.members()) == {"a", "b"}, "a lists a and b")
        stream = watcher.stream("user:deploy,member-join")
        assert stream.head["Error"] == ""
        records = stream.body
        sender.event("other", b"no")  # filtered out by name
        sender.event("deploy", b"v2", coalesce=True)
        # Coalesced as on a serf agent: a's and b's own joins may come first.
        first = next(r for r in records if r.body["Event"] == "user")
        assert first.body == {
            "Coalesce": True, "Event": "user", "LTime": first.body["LTime"],
            "Name": "deploy", "Payload": b"v2",
        }
        late = AgentProcess("c", "--join", a.addr, rpc=False)
        try:
            joined = next(
                r for r in records
                if r.body["Event"] == "member-join"
                and "c" in {m["Name"] for m in r.body["Members"]}
            )
            statuses = {m["Name"]: m["Status"] for m in joined.body["Members"]}
            assert statuses["c"] == "alive"
        finally:
            late.stop()
    finally:
        watcher.close()
        sender.close()
