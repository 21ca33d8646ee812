"""Prometheus metrics for an `Agent`: a collector that reads counters at scrape time, and
a small asyncio HTTP server for `/metrics`.

Why a collector and not prometheus_client's `Counter` objects: the protocol core is pure
and counts in plain ints (`protocol.stats`); the driver counts bytes, connections and the
events it hands on (`aio.event_tally`) the same way. Idle, an agent therefore pays a few
integer additions per timer; the cost of building metric families falls on the scrape.

Why our own server and not `prometheus_client.start_http_server`: that one serves from a
thread, and the collector reads the agent's state, which only the event loop's thread may
touch. Serving on the loop keeps every read consistent without locks.

Names follow memberlist's and Serf's telemetry in Prometheus form (`memberlist.msg.alive`
becomes `memberlist_msg_alive`; counters get the `_total` sample suffix Prometheus uses);
ours start with `swimguard_`. docs/reference/metrics.md lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from swimguard.aio.driver import DrivenNode, Driver
from swimguard.aio.event_tally import EventTally
from swimguard.protocol.members import MemberState
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address
from swimguard.protocol.stats import Histogram
from swimguard.serf.coordinate_exchange import CoordinateExchange
from swimguard.serf.messages import SerfMessageType
from swimguard.serf.node import SerfNode

__all__ = ["AgentCollector", "MetricsServer", "MetricsView", "new_registry"]


@dataclasses.dataclass(frozen=True, slots=True)
class MetricsView:
    """What the collector reads from a running agent."""

    node: DrivenNode
    driver: Driver
    drops: Mapping[str, int]
    health_reports: Mapping[str, int]


class AgentCollector(Collector):
    """Builds every metric family from a `MetricsView` at scrape time.

    `view()` returns None before the agent started: nothing is exported then.
    """

    def __init__(self, view: Callable[[], MetricsView | None]) -> None:
        self._view = view

    def describe(self) -> list[Metric]:
        # Registering must not call collect() on an agent that has not started.
        return []

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        if view is None:
            return
        yield from _memberlist_families(view)
        yield from _serf_families(view.driver.tally)
        if isinstance(view.node, SerfNode):
            yield from _coordinate_families(view.node.coordinates)
        yield from _swimguard_families(view)


def new_registry(view: Callable[[], MetricsView | None]) -> CollectorRegistry:
    """A registry of its own for one agent, so agents in one process never collide."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(view))
    return registry


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
    # Prometheus spells the last bound "+Inf"; repr() gives the shortest exact text.
    buckets = [("+Inf" if bound == math.inf else repr(bound), float(n))
               for bound, n in hist.cumulative()]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=hist.sum)


def _inner_node(node: DrivenNode) -> Node | None:
    """The memberlist core under the agent, when it is ours (a factory may build another)."""
    inner = node.node if isinstance(node, SerfNode) else node
    return inner if isinstance(inner, Node) else None


def _memberlist_families(view: MetricsView) -> Iterator[Metric]:
    io = view.driver.stats
    yield _gauge("memberlist_health_score", "Lifeguard local health score (0 = healthy)",
                 view.node.health_score)
    yield _counter("memberlist_udp_sent", "Bytes sent over UDP", io.udp_sent_bytes)
    yield _counter("memberlist_udp_received", "Bytes received over UDP", io.udp_received_bytes)
    yield _counter("memberlist_tcp_sent", "Bytes sent over TCP streams", io.tcp_sent_bytes)
    yield _counter("memberlist_tcp_accept", "TCP connections accepted", io.tcp_accept)
    yield _counter("memberlist_tcp_connect", "TCP connections opened", io.tcp_connect)
    node = _inner_node(view.node)
    if node is None:
        return
    st = node.stats
    yield _counter("memberlist_msg_alive", "Alive news applied", st.msg_alive)
    yield _counter("memberlist_msg_suspect", "Members marked suspect", st.msg_suspect)
    yield _counter("memberlist_msg_dead", "Members marked dead or left", st.msg_dead)
    yield _counter("memberlist_degraded_probe",
                   "Probes run with an awareness-scaled (longer) interval", st.degraded_probe)
    yield _counter("memberlist_degraded_timeout",
                   "Suspicions that expired with fewer confirmations than Lifeguard wanted",
                   st.degraded_timeout)
    yield _counter("memberlist_gossip", "Gossip rounds run (idle rounds are skipped)",
                   st.gossip_rounds)
    yield _histogram("memberlist_probe_node_seconds",
                     "Probe duration, start to ack or failure", st.probe_node)
    yield _histogram("memberlist_push_pull_node_seconds",
                     "Duration of our completed push/pulls", st.push_pull_node)
    yield _gauge("memberlist_queue_broadcasts", "Member broadcasts queued for gossip",
                 node.broadcasts_queued)
    states = node.count_by_state()
    instances = GaugeMetricFamily("memberlist_node_instances", "Members by state, self included",
                                  labels=["node_state"])
    for state in MemberState:
        instances.add_metric([state.name.lower()], states.get(state, 0))
    yield instances
    yield _gauge("swimguard_queue_user_broadcasts",
                 "User broadcasts queued for gossip (with Serf: its intents, events, queries)",
                 node.user_broadcasts_queued)
    if isinstance(view.node, SerfNode):
        yield from _serf_queues(node)


# Serf keeps three broadcast queues; ours share memberlist's user queue, so each queued
# message is classified by its Serf message type.
_SERF_QUEUES = (
    ("serf_queue_Intent", "Serf join and leave intents queued",
     (SerfMessageType.JOIN, SerfMessageType.LEAVE)),
    ("serf_queue_Event", "Serf user events queued", (SerfMessageType.USER_EVENT,)),
    ("serf_queue_Query", "Serf queries queued", (SerfMessageType.QUERY,)),
)


def _serf_queues(node: Node) -> Iterator[Metric]:
    by_type = node.user_broadcasts_by_first_byte()
    for name, doc, types in _SERF_QUEUES:
        yield _gauge(name, doc, sum(by_type.get(int(t), 0) for t in types))


def _coordinate_families(coords: CoordinateExchange) -> Iterator[Metric]:
    # Serf's name keeps its unit (ms), so dashboards built on Serf's sample still match.
    yield _histogram("serf_coordinate_adjustment_ms",
                     "How far each Vivaldi update moved our coordinate (ms)",
                     coords.adjustment_ms)
    yield _counter("serf_coordinate_rejected",
                   "Coordinate samples refused (bad coordinate or round-trip time)",
                   coords.rejected)
    yield _counter("serf_coordinate_zero_rtt", "Coordinate samples with a round-trip time of 0",
                   coords.zero_rtt)
    yield _counter("swimguard_coordinate_resets",
                   "Times our coordinate went non-finite and restarted at the origin",
                   coords.resets)


def _serf_families(tally: EventTally) -> Iterator[Metric]:
    yield _counter("serf_member_join", "Members that joined (or came back)", tally.join)
    yield _counter("serf_member_failed", "Members that failed", tally.failed)
    yield _counter("serf_member_left", "Members that left gracefully", tally.left)
    yield _counter("serf_member_update", "Member updates (metadata, refuted suspicion)",
                   tally.update)
    yield _counter("serf_member_flap", "Failed members back within 60 s", tally.flap)
    yield _counter("serf_events", "Serf user events received", tally.events)
    yield _counter("serf_queries", "Serf queries received", tally.queries)


def _swimguard_families(view: MetricsView) -> Iterator[Metric]:
    drops = CounterMetricFamily("swimguard_drops", "Dropped input by reason", labels=["reason"])
    for reason, n in sorted(view.drops.items()):
        drops.add_metric([reason], n)
    yield drops
    yield _histogram("swimguard_loop_lag_seconds", "Lateness of each timer callback",
                     view.driver.stats.loop_lag)
    yield _gauge("swimguard_open_connections", "TCP connections currently open",
                 view.driver.open_connections)
    reports = CounterMetricFamily("swimguard_app_health_reports",
                                  "Application health reports by reason", labels=["reason"])
    for reason, n in sorted(view.health_reports.items()):
        reports.add_metric([reason], n)
    yield reports
    node = _inner_node(view.node)
    if node is None:
        return
    st = node.stats
    yield _counter("swimguard_suspicions_started", "Suspicions we started about others",
                   st.suspicions_started)
    yield _counter("swimguard_suspicions_refuted", "Suspicions ended by the suspect's alive",
                   st.suspicions_refuted)
    yield _counter("swimguard_suspicions_confirmed", "Suspicions that expired (member dead)",
                   st.suspicions_confirmed)
    yield _counter("swimguard_refutations", "Suspicions of ourselves we refuted", st.refutations)
    yield _counter("swimguard_probes_failed", "Probes that got no ack in time", st.probe_failed)
    yield _counter("swimguard_loop_stalls", "Loop-lag reports that counted as a stall",
                   node.stalls)
    yield _gauge("swimguard_app_health_points",
                 "Points of the health score still owed to application reports",
                 node.health_from_app)


# -- HTTP ----------------------------------------------------------------------------------

MAX_REQUEST_HEAD = 8192
"""Bytes of request line and headers we read; a longer head is refused."""
REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send its request and read the answer."""
MAX_CONNECTIONS = 16
"""Scrapes served at once; more are closed at once (a scraper needs one)."""


class MetricsServer:
    """Serves `GET /metrics` from one registry on the running loop; `await close()` stops it.

    Hostile clients: the request head is bounded (`MAX_REQUEST_HEAD`), each connection has
    `REQUEST_TIMEOUT` in all, at most `MAX_CONNECTIONS` are served at once; what fails any
    of these is closed and counted in `refused`.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.refused = 0
        """Connections closed without an answer (too many, too slow, too long, broken)."""
        self.served = 0
        """Requests answered (any status)."""
        self.address: Address | None = None
        """Where it listens, once started."""

    async def start(self, address: Address) -> Address:
        """Listen on `(host, port)` (port 0 picks one); returns the bound address.

        OSError when the address cannot be bound; its message names the address.
        """
        host, port = address
        try:
            self._server = await asyncio.start_server(
                self._serve, host, port, limit=MAX_REQUEST_HEAD
            )
        except OSError as exc:
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise OSError(exc.errno, f"cannot serve metrics on {shown}: {exc.strerror or exc}"
                          ) from None
        bound = self._server.sockets[0].getsockname()
        self.address = (bound[0], bound[1])
        return self.address

    async def close(self) -> None:
        """Stop listening and close every open connection."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= MAX_CONNECTIONS:
            self.refused += 1
            writer.close()
            return
        self._writers.add(writer)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(self._answer(head))
                await writer.drain()
            self.served += 1
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            self.refused += 1
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _response(400, "text/plain; charset=utf-8", b"bad request\n")
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return _response(405, "text/plain; charset=utf-8", b"only GET\n", allow=True)
        if target.split("?", 1)[0] not in ("/metrics", "/"):
            return _response(404, "text/plain; charset=utf-8", b"try /metrics\n")
        wants_openmetrics = any(
            line.partition(":")[0].strip().lower() == "accept"
            and "application/openmetrics-text" in line
            for line in lines[1:]
        )
        encoder, content_type = _OPENMETRICS if wants_openmetrics else _PLAIN
        body = encoder(self._registry)
        return _response(200, content_type, b"" if method == "HEAD" else body,
                         length=len(body))


# The two formats, chosen from fixed Accept values: passing the client's header on to
# prometheus_client would echo parts of it (a version) back in our Content-Type.
_PLAIN = choose_encoder("")
_OPENMETRICS = choose_encoder("application/openmetrics-text; version=1.0.0")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _response(status: int, content_type: str, body: bytes, *, length: int | None = None,
              allow: bool = False) -> bytes:
    head = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: close",
    ]
    if allow:
        head.append("Allow: GET, HEAD")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
