"""Prometheus metrics: counters move with the events we cause, scraped over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from swimguard.aio import Agent
from swimguard.aio.event_tally import FLAP_TIMEOUT, EventTally
from swimguard.aio.metrics import MAX_REQUEST_HEAD, MetricsServer
from swimguard.cli.agent_flags import build_parser
from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.protocol.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
)
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.stats import Histogram
from swimguard.serf.events import UserEventReceived
from swimguard.wire.messages import Suspect
from swimguard.wire.packet import encode_message, encode_packet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LOCAL = ("127.0.0.1", 0)


def agent(name: str, **kwargs: Any) -> Agent:
    return Agent(name, bind=LOCAL, config=Config.local(), **kwargs)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


async def cluster(agents: Sequence[Agent]) -> None:
    """Start and join; returns once every agent has seen every other join (events)."""
    for a in agents:
        await a.start()
    for a in agents[1:]:
        await a.join([agents[0].advertise_address])
    names = {a.name for a in agents}
    for a in agents:
        await wait_for_event(a, lambda ev, a=a: _joined_all(a, names))


def _joined_all(a: Agent, names: set[str]) -> bool:
    return {m.name for m in a.members() if m.state is MemberState.ALIVE} == names


async def wait_for_event(a: Agent, done: Callable[[object], bool]) -> object:
    """The first event of `a` (from the start) for which `done` holds; the pytest timeout
    bounds the wait."""
    stream: AsyncIterator[object] = a.events()
    if done(None):
        return None
    async for ev in stream:
        if done(ev):
            return ev
    raise AssertionError("agent closed before the event came")


async def poll(predicate: Callable[[], bool]) -> None:
    """Returns once `predicate()` holds; the pytest timeout bounds the wait."""
    for _ in itertools.count():
        if predicate():
            return
        await asyncio.sleep(0.05)


async def http_get(addr: tuple[str, int], request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(request)
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


async def scrape(addr: tuple[str, int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, by (sample name, sorted labels)."""
    status, headers, body = await http_get(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_scraped_counters_follow_a_failure_we_caused() -> None:
    async def body() -> None:
        agents = [agent(n) for n in ("a", "b", "c")]
        server: MetricsServer | None = None
        try:
            await cluster(agents)
            a = agents[0]
            server = await a.serve_metrics(LOCAL)
            assert server.address is not None
            before = await scrape(server.address)
            assert value(before, "serf_member_join_total") == 3  # a itself, b and c
            assert value(before, "serf_member_failed_total") == 0
            assert value(before, "memberlist_node_instances", node_state="alive") == 3
            assert value(before, "memberlist_tcp_accept_total") >= 2  # b's and c's joins
            assert value(before, "memberlist_tcp_sent_total") > 0  # the push/pull replies

            await agents[2].close()  # c dies without leaving
            await wait_for_event(
                a, lambda ev: isinstance(ev, MemberFailed) and ev.member.name == "c"
            )
            after = await scrape(server.address)
            assert value(after, "serf_member_failed_total") == 1
            assert value(after, "serf_member_left_total") == 0
            assert value(after, "memberlist_node_instances", node_state="alive") == 2
            assert value(after, "memberlist_node_instances", node_state="dead") == 1
            # a's own probe of c may have started the suspicion, or b's gossip: either way
            # a marked c suspect, then dead.
            assert value(after, "memberlist_msg_suspect_total") >= 1
            assert value(after, "memberlist_msg_dead_total") >= 1
            assert value(after, "swimguard_suspicions_started_total") >= 1
            assert value(after, "memberlist_msg_alive_total") >= value(
                before, "memberlist_msg_alive_total"
            )
            probes = value(after, "memberlist_probe_node_seconds_count")
            assert probes > value(before, "memberlist_probe_node_seconds_count")
            assert value(after, "memberlist_probe_node_seconds_bucket", le="+Inf") == probes
            assert value(after, "memberlist_udp_sent_total") > value(
                before, "memberlist_udp_sent_total"
            )
            assert value(after, "swimguard_loop_lag_seconds_count") > 0
            assert value(after, "memberlist_health_score") >= 0
        finally:
            if server is not None:
                await server.close()
            for ag in agents:
                await ag.close()

    run(body)


def test_suspicion_refuted_counts_on_both_sides() -> None:
    async def body() -> None:
        agents = [agent(n) for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            a, b = agents[0], agents[1]
            incarnation = b.local_member.incarnation
            # A forged accusation of b, as if from c: a suspects b, gossips it, b refutes.
            forged = encode_packet(
                encode_message(Suspect(incarnation=incarnation, node="b", from_="c"))
            )
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(forged, a.advertise_address)
            await wait_for_event(
                a,
                lambda ev: isinstance(ev, MemberUpdated)
                and ev.member.name == "b"
                and ev.member.incarnation > incarnation,
            )
            # At least: a slow, shared machine may add suspicions of its own (a probe late).
            get = a.metrics.get_sample_value
            assert get("swimguard_suspicions_started_total") >= 1
            assert get("swimguard_suspicions_refuted_total") >= 1
            assert get("memberlist_msg_suspect_total") >= 1
            assert get("serf_member_update_total") >= 1
            assert b.metrics.get_sample_value("swimguard_refutations_total") >= 1
        finally:
            for ag in agents:
                await ag.close()

    run(body)


def test_two_agents_in_one_process_have_separate_registries() -> None:
    async def body() -> None:
        a, b, c = agent("a"), agent("b"), agent("c")
        try:
            await cluster([a, c])  # b stays alone
            await b.start()
            assert isinstance(a.metrics, CollectorRegistry)
            assert a.metrics is a.metrics
            assert a.metrics is not b.metrics
            assert a.metrics.get_sample_value("serf_member_join_total") == 2
            assert b.metrics.get_sample_value("serf_member_join_total") == 1  # itself
            assert a.metrics.get_sample_value("memberlist_tcp_accept_total") >= 1
            assert b.metrics.get_sample_value("memberlist_tcp_accept_total") == 0
            assert b.metrics.get_sample_value("memberlist_udp_received_total") == 0
            # Nothing lands in prometheus_client's process-wide registry.
            assert REGISTRY.get_sample_value("serf_member_join_total") is None
        finally:
            for ag in (a, b, c):
                await ag.close()

    run(body)


def test_metrics_before_start_are_empty() -> None:
    a = agent("a")
    assert list(a.metrics.collect()) == []


def test_http_answers_only_metrics_and_refuses_hostile_requests() -> None:
    async def body() -> None:
        a = agent("a")
        server: MetricsServer | None = None
        try:
            await a.start()
            server = await a.serve_metrics(LOCAL)
            addr = server.address
            assert addr is not None
            status, _, text = await http_get(addr, b"GET /nope HTTP/1.1\r\n\r\n")
            assert status == 404
            status, headers, text = await http_get(addr, b"POST /metrics HTTP/1.1\r\n\r\n")
            assert status == 405
            assert headers["allow"] == "GET, HEAD"
            status, _, _ = await http_get(addr, b"\x00\x01 garbage\r\n\r\n")
            assert status == 400
            status, headers, text = await http_get(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n")
            assert status == 200
            assert text == b""
            assert int(headers["content-length"]) > 0
            status, headers, text = await http_get(
                addr,
                b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0"
                b"\r\n\r\n",
            )
            assert status == 200
            assert headers["content-type"].startswith("application/openmetrics-text")
            assert text.endswith(b"# EOF\n")
            status, headers, _ = await http_get(
                addr,
                b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=6\n"
                b"Set-Cookie: x\r\n\r\n",
            )
            assert status == 200
            assert "Set-Cookie" not in headers.get("content-type", "")  # nothing echoed
            assert "version=6" not in headers["content-type"]
            # A head longer than the limit: closed without an answer, counted.
            refused = server.refused
            reader, writer = await asyncio.open_connection(*addr)
            writer.write(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (2 * MAX_REQUEST_HEAD))
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            assert server.refused == refused + 1
            # A client that connects and says nothing does not stop others being served.
            idle_reader, idle_writer = await asyncio.open_connection(*addr)
            samples = await scrape(addr)
            assert ("memberlist_udp_sent_total", ()) in samples
            idle_writer.close()
            await idle_writer.wait_closed()
            del idle_reader
        finally:
            if server is not None:
                await server.close()
            await a.close()

    run(body)


def test_a_taken_address_is_named_in_the_error() -> None:
    async def body() -> None:
        a = agent("a")
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
                await a.serve_metrics(("127.0.0.1", port))

    run(body)


# -- the parts, with fake clocks ------------------------------------------------------------


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 7.0):
        h.observe(v)
    assert h.cumulative() == [(0.1, 2), (1.0, 4), (float("inf"), 5)]
    assert h.count == 5
    assert h.sum == pytest.approx(8.65)
    with pytest.raises(ValueError):
        Histogram((1.0, 0.5))


def _member(name: str) -> Member:
    return Member(name, ("127.0.0.1", 7946), 1, MemberState.ALIVE, b"", bytes(6))


def test_event_tally_counts_serf_style_and_flaps_within_the_timeout() -> None:
    now = [100.0]
    tally = EventTally(clock=lambda: now[0])
    tally.count(MemberJoined(_member("x")))
    tally.count(MemberFailed(_member("x")))
    now[0] += FLAP_TIMEOUT - 1
    tally.count(MemberJoined(_member("x")))  # back within the timeout: a flap
    tally.count(MemberFailed(_member("x")))
    now[0] += FLAP_TIMEOUT
    tally.count(MemberJoined(_member("x")))  # back too late: a plain join
    tally.count(MemberLeft(_member("y")))
    tally.count(MemberUpdated(_member("x")))
    tally.count(UserEventReceived("deploy", b"", 3, True))
    assert (tally.join, tally.failed, tally.flap, tally.left, tally.update, tally.events) == (
        3, 2, 1, 1, 1, 1
    )
    assert tally.queries == 0


# -- `swimguard agent --metrics-addr` ---------------------------------------------------------

def _no_rpc() -> list[str]:
    # An agent that serves Serf's RPC does so on 7373 by default: off, so that these agents
    # can run beside others (the flag exists once the agent has an RPC server).
    _, agent_parser = build_parser()
    flags = {flag for action in agent_parser._actions for flag in action.option_strings}
    return ["--rpc-addr", ""] if "--rpc-addr" in flags else []


AGENT = [sys.executable, "-m", "swimguard", "agent", "--name", "m", "--bind", "127.0.0.1:0",
         "--profile", "local", *_no_rpc()]


def test_cli_serves_metrics_at_the_address_it_logs() -> None:
    proc = subprocess.Popen(
        [*AGENT, "--metrics-addr", "127.0.0.1:0", "--log-level", "INFO"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    try:
        url = None
        for line in proc.stderr:  # ends at exit: a failure to start ends the loop
            found = re.search(r"metrics at (http://\S+/metrics)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "the agent never said where its metrics are"
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode()
        names = {fam.name for fam in text_string_to_metric_families(text)}
        assert {"memberlist_msg_alive", "serf_member_join", "memberlist_health_score",
                "memberlist_node_instances", "swimguard_loop_lag_seconds"} <= names
        assert "serf_member_join_total 1.0" in text  # the agent itself
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stderr.close()
    assert proc.returncode == 0


def test_cli_metrics_addr_in_use_exits_3_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*AGENT, "--metrics-addr", f"127.0.0.1:{port}", "--log-level", "WARNING"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 3
    assert f"--metrics-addr: cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad", ["127.0.0.1", "127.0.0.1:http", "::1:9100"])
def test_cli_bad_metrics_addr_is_a_usage_error(bad: str) -> None:
    result = subprocess.run(
        [*AGENT, "--metrics-addr", bad], capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "--metrics-addr" in result.stderr
    assert repr(bad) in result.stderr


# -- application health -----------------------------------------------------------------------


def test_report_health_moves_the_score_and_is_exported_by_reason() -> None:
    async def body() -> None:
        a = agent("a")
        try:
            await a.start()
            a.report_health(2, "disk full")
            assert a.health_score == 2
            get = a.metrics.get_sample_value
            assert get("memberlist_health_score") == 2
            assert get("swimguard_app_health_points") == 2
            assert get("swimguard_app_health_reports_total", {"reason": "disk full"}) == 1
            a.report_health(0, "disk fine")
            assert a.health_score == 0
            assert get("swimguard_app_health_points") == 0
            with pytest.raises(ValueError, match="health score"):
                a.report_health(a.config.awareness_max_multiplier, "too much")
            for i in range(40):  # reasons are labels: their number is bounded
                a.report_health(0, f"reason {i}")
            labels = [
                s.labels["reason"]
                for fam in a.metrics.collect()
                if fam.name == "swimguard_app_health_reports"
                for s in fam.samples
            ]
            assert len(labels) <= 33
            assert "other" in labels
        finally:
            await a.close()

    run(body)


def test_report_health_needs_a_started_agent() -> None:
    with pytest.raises(UsageError):
        agent("a").report_health(1, "early")


def test_cli_unresolvable_metrics_host_exits_3_naming_it() -> None:
    result = subprocess.run(
        [*AGENT, "--metrics-addr", "foo.invalid:9100", "--log-level", "WARNING"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 3
    assert "--metrics-addr foo.invalid:9100: cannot resolve 'foo.invalid'" in result.stderr
    assert "Traceback" not in result.stderr


def test_closing_the_server_closes_idle_clients() -> None:
    async def body() -> None:
        a = agent("a")
        try:
            await a.start()
            server = await a.serve_metrics(LOCAL)
            assert server.address is not None
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(b"GET /metr")  # and never the rest
            await writer.drain()
            await server.close()
            # Closed by the server, unanswered: EOF, or a reset since our bytes went unread.
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""
            writer.close()
            with contextlib.suppress(ConnectionResetError):
                await writer.wait_closed()
        finally:
            await a.close()

    run(body)


def test_serf_queues_are_told_apart_by_message_type() -> None:
    async def body() -> None:
        a = agent("a")  # alone: nothing it queues is ever sent
        plain = agent("p", serf_compat=False)
        try:
            await a.start()
            await plain.start()
            get = a.metrics.get_sample_value
            assert get("serf_queue_Intent") == 0  # its join intent waits for a join
            assert get("serf_queue_Event") == 0
            a.user_event("deploy", b"v2")
            a.user_event("restart", b"")
            assert get("serf_queue_Event") == 2
            assert get("serf_queue_Query") == 0
            await a.leave(timeout=0.5)
            assert get("serf_queue_Intent") == 1  # its leave intent
            assert get("swimguard_queue_user_broadcasts") == 3
            # A plain memberlist agent has no Serf queues to report.
            assert plain.metrics.get_sample_value("serf_queue_Intent") is None
            assert plain.metrics.get_sample_value("swimguard_queue_user_broadcasts") == 0
        finally:
            await a.close()
            await plain.close()

    run(body)


def test_coordinate_updates_move_serfs_adjustment_metric() -> None:
    async def body() -> None:
        a, b = agents = [agent("a"), agent("b")]
        plain = agent("p", serf_compat=False)
        server: MetricsServer | None = None
        try:
            await a.start()
            server = await a.serve_metrics(LOCAL)
            assert server.address is not None
            before = await scrape(server.address)
            assert value(before, "serf_coordinate_adjustment_ms_count") == 0  # alone
            await b.start()
            await b.join([a.advertise_address])
            # Each direct probe's ack carries the peer's coordinate; the first one moves ours.
            # No event marks it, so poll; the test's timeout bounds the wait.
            await poll(lambda: a.coordinate("b") is not None)
            after = await scrape(server.address)
            count = value(after, "serf_coordinate_adjustment_ms_count")
            assert count >= 1
            assert count == value(after, "serf_coordinate_adjustment_ms_bucket", le="+Inf")
            # A new member starts at the origin with the largest error: its first update
            # moves it by more than nothing.
            assert value(after, "serf_coordinate_adjustment_ms_sum") > 0.0
            assert value(after, "serf_coordinate_rejected_total") == 0
            assert value(after, "swimguard_coordinate_resets_total") == 0
            # A plain memberlist agent has no coordinates to report.
            await plain.start()
            assert plain.metrics.get_sample_value("serf_coordinate_adjustment_ms_count") is None
        finally:
            if server is not None:
                await server.close()
            for ag in (*agents, plain):
                await ag.close()

    run(body)
