"""Debian's `serf` command line against a swimguard agent's RPC port, side by side with the
same command against a real serf agent in the same cluster: same output modulo the agent."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
from bench.serf_harness import SERF, Cluster, SerfAgent, SwimAgent, free_port, wait_for

from swimguard.rpc import Client, RpcClientError

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def serf_cli(rpc_port: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert SERF is not None
    command, *rest = args
    return subprocess.run(
        [SERF, command, f"-rpc-addr=127.0.0.1:{rpc_port}", *rest],
        capture_output=True, text=True, timeout=30, check=check,
    )


def _lines(text: str) -> list[str]:
    """Output lines with column padding collapsed, sorted (serf lists members unordered)."""
    return sorted(re.sub(r"\s+", " ", line).strip() for line in text.splitlines() if line.strip())


def _members_json(rpc_port: int, *flags: str) -> list[dict[str, Any]]:
    out = serf_cli(rpc_port, "members", "-format=json", *flags).stdout
    # `-role` prints a deprecation warning first; no members prints `"members": null`.
    out = out[out.index("{"):]
    return sorted(json.loads(out)["members"] or [], key=lambda m: m["name"])


def _mixed(cluster: Cluster) -> tuple[SerfAgent, SwimAgent, int]:
    """serf agent `s` (role=db) and swimguard `py` (role=web, RPC on a free port), both alive."""
    s = cluster.start_serf("s", tags={"role": "db"})
    rpc = free_port()
    py = cluster.start_swim(
        "py", [s.addr], tags={"role": "web"}, extra=["--rpc-addr", f"127.0.0.1:{rpc}"]
    )

    def both_see_both() -> bool:
        ours = {m["name"]: m["status"] for m in _members_json(rpc)}
        theirs = {m["name"]: m["status"] for m in _members_json(s.rpc_port)}
        want = {"s": "alive", "py": "alive"}
        return ours == want and theirs == want

    wait_for(both_see_both, 20, 0.2, "serf members on both agents lists s and py alive")
    return s, py, rpc


def test_serf_members_reads_the_same_from_our_agent(cluster: Cluster) -> None:
    s, _, rpc = _mixed(cluster)
    for flags in ([], ["-detailed"], ["-status=alive"], ["-tag", "role=web"], ["-name=p.*"],
                  ["-role=db"], ["-status=alive|left"], ["-tag", "role=we"]):
        ours = serf_cli(rpc, "members", *flags)
        theirs = serf_cli(s.rpc_port, "members", *flags)
        assert _lines(ours.stdout) == _lines(theirs.stdout), flags
        assert _members_json(rpc, *flags) == _members_json(s.rpc_port, *flags), flags
    assert [m["name"] for m in _members_json(rpc, "-tag", "role=web")] == ["py"]
    assert _members_json(rpc, "-tag", "role=we") == []  # anchored, as serf


def test_serf_info_event_tags_join_monitor_leave_against_our_agent(cluster: Cluster) -> None:
    s, py, rpc = _mixed(cluster)

    info = serf_cli(rpc, "info").stdout
    sections = [line[:-1] for line in info.splitlines() if line and not line[0].isspace()]
    # Exactly serf's sections (our health is in `explain`, which only `swimguard info` asks).
    theirs = serf_cli(s.rpc_port, "info").stdout
    assert sections == [ln[:-1] for ln in theirs.splitlines() if ln and not ln[0].isspace()]
    assert sections == ["agent", "event_handlers", "runtime", "serf", "tags"]
    assert "\tname = py" in info
    as_json = json.loads(serf_cli(rpc, "info", "-format=json").stdout)
    assert as_json["agent"] == {"name": "py"}
    assert "\trole = web" in info
    serf_keys = {line.split(" = ")[0] for line in theirs.splitlines() if " = " in line}
    our_keys = {line.split(" = ")[0] for line in info.splitlines() if " = " in line}
    # serf lists its handler scripts and coordinate resets; we have neither.
    assert serf_keys - our_keys <= {"\tcoordinate_resets", "\t*:", "\tver"}

    # A streaming monitor (stream * + monitor) sees our log ring and the user event.
    assert SERF is not None
    monitor = subprocess.Popen(
        [SERF, "monitor", f"-rpc-addr=127.0.0.1:{rpc}", "-log-level=info"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert monitor.stdout is not None
        first = monitor.stdout.readline()
        assert re.match(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[INFO\] ", first), first

        sent = serf_cli(rpc, "event", "deploy", "v1")
        assert sent.stdout.strip() == "Event 'deploy' dispatched! Coalescing enabled: true"
        assert sent.stdout == serf_cli(s.rpc_port, "event", "other", "v1").stdout.replace(
            "'other'", "'deploy'"
        )
        seen: list[str] = []
        for line in monitor.stdout:
            seen.append(line)
            if 'Name: "deploy"' in line or len(seen) > 500:
                break
        text = "".join(seen)
        assert "Event Info:" in text, text
        assert 'Name: "deploy"' in text, text
    finally:
        monitor.send_signal(signal.SIGINT)
        monitor.wait(10)
        assert monitor.stdout is not None
        monitor.stdout.close()

    def serf_saw_deploy() -> bool:
        return any(ev == "user" and "deploy" in rest for _, ev, rest in s.handler_events())

    wait_for(serf_saw_deploy, 20, 0.2, "serf's handler sees the user event sent through us")

    tagged = serf_cli(rpc, "tags", "-set", "ver=2", "-delete", "role")
    assert tagged.stdout.strip() == "Successfully updated agent tags"
    assert tagged.stdout == serf_cli(s.rpc_port, "tags", "-set", "ver=1").stdout

    def serf_sees_new_tags() -> bool:
        return any(m["name"] == "py" and m["tags"] == {"ver": "2"}
                   for m in _members_json(s.rpc_port))

    wait_for(serf_sees_new_tags, 20, 0.2, "serf sees py's new tags")

    s2 = cluster.start_serf("s2")
    joined = serf_cli(rpc, "join", s2.addr)
    assert joined.stdout.strip() == "Successfully joined cluster by contacting 1 nodes."
    # The same failures against serf read the same, byte for byte (Go's dial text too).
    for seeds in (["127.0.0.1:1"], ["127.0.0.1:1", "127.0.0.1:2"]):
        failed = serf_cli(rpc, "join", *seeds, check=False)
        assert failed.returncode == 1
        assert failed.stdout.startswith("Error joining the cluster: ")
        theirs_failed = serf_cli(s.rpc_port, "join", *seeds, check=False)
        assert theirs_failed.returncode == 1
        assert failed.stdout == theirs_failed.stdout

    left = serf_cli(rpc, "leave")
    assert left.stdout.strip() == "Graceful leave complete"
    assert left.stdout == serf_cli(s2.rpc_port, "leave").stdout
    assert py.proc.popen.wait(20) == 0

    def serf_says_left() -> bool:
        return {m["name"]: m["status"] for m in _members_json(s.rpc_port)}.get("py") == "left"

    wait_for(serf_says_left, 20, 0.2, "serf shows py as left after `serf leave` through us")


def test_auth_token_is_required_like_serf(cluster: Cluster) -> None:
    s = cluster.start_serf("s")
    rpc = free_port()
    cluster.start_swim("py", [s.addr], extra=["--rpc-addr", f"127.0.0.1:{rpc}",
                                              "--rpc-auth", "s3cret"])
    refused = serf_cli(rpc, "members", check=False)
    assert refused.returncode == 1
    assert refused.stdout.strip() == "Error retrieving members: Authentication required"
    wrong = serf_cli(rpc, "members", "-rpc-auth=nope", check=False)
    assert wrong.returncode == 1
    assert "Invalid authentication token" in wrong.stdout
    ok = serf_cli(rpc, "members", "-rpc-auth=s3cret")
    assert "py" in ok.stdout


def _swimguard_cli(rpc_port: int, *args: str) -> subprocess.CompletedProcess[str]:
    command, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "swimguard", command, f"-rpc-addr=127.0.0.1:{rpc_port}", *rest],
        capture_output=True, text=True, timeout=30, check=True,
    )


def test_swimguard_rpc_commands_read_a_serf_agent_like_serf(cluster: Cluster) -> None:
    s, _, _ = _mixed(cluster)
    for flags in ([], ["-detailed"], ["-status=alive"], ["-tag", "role=web"]):
        ours = _swimguard_cli(s.rpc_port, "members", *flags).stdout
        theirs = serf_cli(s.rpc_port, "members", *flags).stdout
        # Tag order is Go's map order on serf's side: compare tag sets per line.
        assert _lines(_sort_tags(ours)) == _lines(_sort_tags(theirs)), flags
    ours_json = json.loads(_swimguard_cli(s.rpc_port, "members", "-format=json").stdout)
    theirs_json = json.loads(serf_cli(s.rpc_port, "members", "-format=json").stdout)
    assert sorted(ours_json["members"], key=lambda m: m["name"]) == sorted(
        theirs_json["members"], key=lambda m: m["name"]
    )
    info = _swimguard_cli(s.rpc_port, "info").stdout
    assert {ln for ln in info.splitlines() if ln.endswith(":")} == {
        ln for ln in serf_cli(s.rpc_port, "info").stdout.splitlines() if ln.endswith(":")
    }


def _sort_tags(text: str) -> str:
    out = []
    for line in text.splitlines():
        out.append(re.sub(r"(\S+=\S*(?:,\S+=\S*)*)",
                          lambda m: ",".join(sorted(m.group(1).split(","))), line))
    return "\n".join(out)


def test_departed_members_read_the_same_as_on_serf(cluster: Cluster) -> None:
    """A serf agent that leaves reads `left`, one SIGKILLed reads `failed`, on our agent as on
    serf, also after our core has dropped them from its table (15 s with -profile local)."""
    s, _, rpc = _mixed(cluster)
    gone = cluster.start_serf("gone", [s.addr])
    dead = cluster.start_serf("dead", [s.addr])

    def views() -> tuple[dict[str, str], dict[str, str]]:
        ours = {m["name"]: m["status"] for m in _members_json(rpc)}
        theirs = {m["name"]: m["status"] for m in _members_json(s.rpc_port)}
        return ours, theirs

    all_alive = {"s": "alive", "py": "alive", "gone": "alive", "dead": "alive"}
    wait_for(lambda: views() == (all_alive, all_alive), 30, 0.2, "four alive everywhere")
    gone.leave()
    dead.proc.kill9()
    want = {"s": "alive", "py": "alive", "gone": "left", "dead": "failed"}
    wait_for(lambda: views() == (want, want), 60, 0.2, "left and failed on both")

    def core_forgot() -> bool:
        # `serf.members` in our stats counts the core's table, which drops them after 15 s.
        stats = serf_cli(rpc, "info", "-format=json").stdout
        return bool(json.loads(stats)["serf"]["members"] == "2")

    wait_for(core_forgot, 60, 0.5, "our core drops the departed members")
    assert views() == (want, want)
    # `serf force-leave` through our agent turns the failed member into a left one everywhere.
    forced = serf_cli(rpc, "force-leave", "dead")
    assert forced.stdout == ""
    want = {"s": "alive", "py": "alive", "gone": "left", "dead": "left"}
    wait_for(lambda: views() == (want, want), 30, 0.2, "dead is left on both after force-leave")
    ours_text = serf_cli(rpc, "members", "-status=left|failed").stdout
    theirs_text = serf_cli(s.rpc_port, "members", "-status=left|failed").stdout
    assert _lines(ours_text) == _lines(theirs_text)


def test_serf_query_answered_through_our_rpc(cluster: Cluster) -> None:
    """`serf query` on a serf agent; our agent's RPC client streams it and responds."""
    s, _, rpc = _mixed(cluster)

    async def answer_one() -> str:
        async with Client("127.0.0.1", rpc) as client, client.stream("query:ping-app") as events:
            ready.set()
            async for event in events:
                await client.respond(event.id, b"pong from py")
                with pytest.raises(RpcClientError, match="response already sent"):
                    await client.respond(event.id, b"twice")
                return event.name
        return ""

    ready = threading.Event()
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(answer_one())))
    worker.start()
    try:
        assert ready.wait(30)
        out = serf_cli(s.rpc_port, "query", "-timeout=3s", "ping-app", "hi").stdout
    finally:
        worker.join(60)
    assert result == ["ping-app"]
    assert "Response from 'py': pong from py" in out
    assert "Ack from 'py'" in out


@pytest.mark.parametrize(
    "args",
    [
        ["query", "-timeout=1s", "hello", "hi"],
        ["query", "-format=json", "-timeout=1s", "-node=s", "hello"],
        ["reachability"],
        ["keys", "-list"],
        ["keys", "-install", "QHOYjmYlxSCBhdfiolhC4ryzXgnlEQ5jT+ix6qtU6cY="],
        ["keys", "-install", "!!notbase64"],
        ["query", "_serf_conflict", "x"],
    ],
)
def test_queries_and_keys_read_the_same_as_on_serf(cluster: Cluster, args: list[str]) -> None:
    """`serf query`, `reachability` and `keys` through our agent: same output and status as
    through a serf agent of the same cluster (line order aside: answers arrive unordered)."""
    s, _, rpc = _mixed(cluster)
    ours = serf_cli(rpc, *args, check=False)
    theirs = serf_cli(s.rpc_port, *args, check=False)
    assert ours.returncode == theirs.returncode, (ours, theirs)
    if "-format=json" in args:
        assert json.loads(ours.stdout) == json.loads(theirs.stdout)
    else:
        assert _lines(ours.stdout) == _lines(theirs.stdout)


def test_serf_rtt_through_our_agent(cluster: Cluster) -> None:
    """`serf rtt` reads coordinates through our RPC (get-coordinate), as through serf's."""
    s, _, rpc = _mixed(cluster)

    def estimated(port: int, *nodes: str) -> str:
        out = serf_cli(port, "rtt", *nodes, check=False)
        return out.stdout if out.returncode == 0 else ""

    # Coordinates come with probe acks: wait until each side has probed the other.
    ours = wait_for(lambda: estimated(rpc, "s"), 30, 0.2, "our agent knows s's coordinate")
    assert re.fullmatch(r"Estimated s <-> py rtt: \d+\.\d{3} ms\n", ours), ours
    theirs = wait_for(lambda: estimated(s.rpc_port, "py"), 30, 0.2, "serf knows py's")
    assert re.fullmatch(r"Estimated py <-> s rtt: \d+\.\d{3} ms\n", theirs), theirs
    unknown = serf_cli(rpc, "rtt", "ghost", check=False)
    assert unknown.returncode == 1
    assert unknown.stdout == serf_cli(s.rpc_port, "rtt", "ghost", check=False).stdout


def _swimguard_cli_status(rpc_port: int, *args: str) -> subprocess.CompletedProcess[str]:
    command, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "swimguard", command, f"-rpc-addr=127.0.0.1:{rpc_port}", *rest],
        capture_output=True, text=True, timeout=30, check=False,
    )


def _timings_masked(text: str) -> str:
    """rtt estimates and reachability's query times differ from run to run: mask the figures."""
    return re.sub(r"\d+\.\d+ (ms|sec)", r"N \1", text)


@pytest.mark.parametrize(
    "args",
    [
        ["query", "-timeout=1s", "hello", "hi"],
        ["query", "-no-ack", "-timeout=500ms", "hello"],
        ["query", "-format=json", "-timeout=1s", "-node=s", "hello"],
        ["query", "-format=json", "-no-ack", "-timeout=1s", "-tag", "role=web", "hello"],
        ["query", "_serf_conflict", "x"],
        ["query", "-relay-factor=300", "x"],
        ["reachability"],
        ["reachability", "-verbose"],
        ["keys", "-list"],
        ["keys", "-install", "QHOYjmYlxSCBhdfiolhC4ryzXgnlEQ5jT+ix6qtU6cY="],
        ["keys", "-use", "QHOYjmYlxSCBhdfiolhC4ryzXgnlEQ5jT+ix6qtU6cY="],
        ["keys", "-remove", "QHOYjmYlxSCBhdfiolhC4ryzXgnlEQ5jT+ix6qtU6cY="],
        ["keys", "-install", "!!notbase64"],
        ["keys", "-list", "-remove", "x"],
        ["rtt", "ghost"],
        ["rtt", "s", "ghost"],
        ["force-leave", "ghost"],
        ["force-leave", "-prune", "ghost"],
    ],
)
def test_swimguard_cluster_commands_print_what_serf_prints(
    cluster: Cluster, args: list[str]
) -> None:
    """`swimguard query|keys|rtt|reachability|force-leave` against a serf agent's RPC and
    against ours: the same exit status and output as Debian's `serf` with the same flags."""
    s, _, rpc = _mixed(cluster)
    for port in (s.rpc_port, rpc):
        ours = _swimguard_cli_status(port, *args)
        theirs = serf_cli(port, *args, check=False)
        assert ours.returncode == theirs.returncode, (port, ours, theirs)
        assert ours.stderr == "", ours.stderr
        if "-format=json" in args:
            assert json.loads(ours.stdout) == json.loads(theirs.stdout), port
        else:
            assert _lines(_timings_masked(ours.stdout)) == _lines(
                _timings_masked(theirs.stdout)
            ), port


def test_swimguard_rtt_and_query_responses_like_serf(cluster: Cluster) -> None:
    """`swimguard rtt` estimates from the same coordinates as `serf rtt`, and `swimguard
    query` prints a handler's response (trailing newline dropped) as serf does."""
    s, _, rpc = _mixed(cluster)

    def estimated(port: int, *nodes: str) -> str:
        out = serf_cli(port, "rtt", *nodes, check=False)
        return out.stdout if out.returncode == 0 else ""

    for port, other, me in ((rpc, "s", "py"), (s.rpc_port, "py", "s")):
        wait_for(lambda p=port, o=other: estimated(p, o), 30, 0.2, f"{me} knows {other}'s")
        ours = _swimguard_cli_status(port, "rtt", other)
        assert ours.returncode == 0, ours
        assert re.fullmatch(rf"Estimated {other} <-> {me} rtt: \d+\.\d{{3}} ms\n", ours.stdout)
        both = _swimguard_cli_status(port, "rtt", me, other).stdout
        assert both.startswith(f"Estimated {me} <-> {other} rtt: "), both

    async def answer_one() -> None:
        async with Client("127.0.0.1", rpc) as client, client.stream("query:ping-app") as events:
            ready.set()
            async for event in events:
                await client.respond(event.id, b"pong <py>\n")
                return

    for port in (s.rpc_port, rpc):
        ready = threading.Event()
        worker = threading.Thread(target=lambda: asyncio.run(answer_one()))
        worker.start()
        try:
            assert ready.wait(30)
            text = _swimguard_cli_status(port, "query", "-timeout=2s", "ping-app", "hi")
        finally:
            worker.join(60)
        assert text.returncode == 0, text
        lines = text.stdout.splitlines()
        assert lines[0] == "Query 'ping-app' dispatched"
        assert "Response from 'py': pong <py>" in lines
        assert sorted(ln for ln in lines if ln.startswith("Ack from")) == [
            "Ack from 'py'", "Ack from 's'"
        ]
        assert lines[-2:] == ["Total Acks: 2", "Total Responses: 1"]


def test_swimguard_keys_rotate_an_encrypted_cluster_like_serf(cluster: Cluster) -> None:
    """A key rotation step by step in an encrypted mixed cluster: at each step `swimguard
    keys` and `serf keys`, each through the serf agent's RPC and ours, print the same lines
    and exit alike (install, use and remove are idempotent, so repeating a step is safe)."""
    first = "QHOYjmYlxSCBhdfiolhC4ryzXgnlEQ5jT+ix6qtU6cY="
    second = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8="
    s = cluster.start_serf("s", encrypt=first)
    rpc = free_port()
    cluster.start_swim("py", [s.addr], encrypt=first, extra=["--rpc-addr", f"127.0.0.1:{rpc}"])
    wait_for(lambda: "py" in serf_cli(s.rpc_port, "members", "-status=alive").stdout,
             20, 0.2, "s sees py alive")
    steps = [["-list"], ["-install", second], ["-list"], ["-use", second], ["-remove", first],
             ["-list"], ["-remove", second], ["-use", first]]
    for step in steps:
        seen = set()
        for port in (s.rpc_port, rpc):
            for done in (serf_cli(port, "keys", *step, check=False),
                         _swimguard_cli_status(port, "keys", *step)):
                seen.add((done.returncode, tuple(_lines(done.stdout))))
        assert len(seen) == 1, (step, seen)
    # The last step failed (that key is no longer installed), the same on every node.
    assert next(iter(seen))[0] == 1
