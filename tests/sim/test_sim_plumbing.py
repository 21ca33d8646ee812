"""The simulator's own machinery, driven with a trivial fake node (no protocol involved)."""

from __future__ import annotations

import random

import pytest
from sim_fakes import FakeNode

from swimguard.protocol.events import UserMessage
from swimguard.protocol.outgoing import Address, Datagram
from swimguard.sim.clock import EventQueue, VirtualClock
from swimguard.sim.cluster import SimCluster, SimMember
from swimguard.sim.distributions import Fixed, parse_distribution
from swimguard.sim.network import LinkModel
from swimguard.sim.slow import SlowSpec


def fake(name: str, addr: Address, rng: random.Random, *, now: float) -> FakeNode:
    return FakeNode(name, addr, rng, now=now)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str, bytes]] = []

    def on_events(self, now: float, member: SimMember, events: list, cause: str) -> None:
        for e in events:
            if isinstance(e, UserMessage):
                self.seen.append((now, member.name, e.data))


def build(n: int, seed: int, link: LinkModel | None = None, trace: bool = True) -> SimCluster:
    cluster = SimCluster(fake, seed=seed, link=link, trace=trace)
    cluster.add_member("m0")
    for i in range(1, n):
        cluster.add_member(f"m{i}", ["m0"])
    return cluster


def test_same_seed_same_trace_digest() -> None:
    digests = []
    for _ in range(2):
        c = build(8, seed=3, link=LinkModel(latency=parse_distribution("exp:0.01"), loss=0.1))
        c.run_until(30)
        digests.append(c.trace_digest())
    other = build(8, seed=4, link=LinkModel(latency=parse_distribution("exp:0.01"), loss=0.1))
    other.run_until(30)
    assert digests[0] == digests[1]
    assert other.trace_digest() != digests[0]


def test_loss_and_duplication_counted() -> None:
    c = build(5, seed=1, link=LinkModel(loss=0.25, duplicate=0.1))
    c.run_until(200)
    stats = c.network.stats
    assert stats.sent > 500
    assert 0.18 < stats.lost / stats.sent < 0.32
    assert 0.05 < stats.duplicated / (stats.sent - stats.lost) < 0.15


def test_partition_and_one_way_block() -> None:
    c = build(4, seed=1)
    rec = Recorder()
    c.add_listener(rec)
    c.network.partition([[0, 1], [2, 3]])
    assert not c.network.reachable(0, 2)
    assert c.network.reachable(2, 3)
    c.network.heal()
    c.network.block(1, 0)
    assert not c.network.reachable(1, 0)
    assert c.network.reachable(0, 1)
    c.run_until(50)
    # Nothing sent by m1 after the block reaches m0, while m0 -> m1 still flows.
    m0, m1 = c.member("m0"), c.member("m1")
    late = [r for r in m0.node.received if r[0] > 0.01 and r[1] == m1.addr]  # type: ignore[attr-defined]
    assert not late
    assert any(r[1] == m0.addr for r in m1.node.received)  # type: ignore[attr-defined]
    assert c.network.stats.blocked > 0


def test_slow_member_timers_are_late_and_lag_is_reported() -> None:
    c = build(3, seed=2)
    c.set_slow("m2", SlowSpec(Fixed(0.75)))
    c.run_until(20)
    lags = c.member("m2").node.lags  # type: ignore[attr-defined]
    assert lags
    assert all(abs(lag - 0.75) < 1e-9 for lag in lags[1:])
    assert all(lag == 0.0 for lag in c.member("m1").node.lags)  # type: ignore[attr-defined]


def test_slow_member_processes_inputs_late() -> None:
    c = build(2, seed=2, link=LinkModel(latency=Fixed(0.001)))
    rec = Recorder()
    c.add_listener(rec)
    c.run_until(5)
    c.set_slow("m0", SlowSpec(Fixed(0.3), timers=False))
    before = len(rec.seen)
    ping = Datagram(c.member("m0").addr, b"ping 99")
    c.call("m1", lambda node, now: node.out.append(ping))  # type: ignore[attr-defined]
    start = c.now
    c.run_until(start + 0.2)
    assert not [s for s in rec.seen[before:] if s[2] == b"ack 99"]
    c.run_until(start + 0.5)
    got = [s for s in rec.seen[before:] if s[2] == b"ack 99"]
    assert got
    assert got[0][0] == pytest.approx(start + 0.302)


def test_streams_in_order_eof_and_refused() -> None:
    c = build(3, seed=5)
    rec = Recorder()
    c.add_listener(rec)
    c.call("m1", lambda node, now: node.call_stream(c.member("m2").addr, now=now))  # type: ignore[attr-defined]
    c.run_for(1)
    assert c.now - 1 <= rec.seen[-1][0]
    assert rec.seen[-1][1:] == ("m2", b"stream:part1;part2")
    c.crash("m2")
    sid: list[int] = []
    c.call("m1", lambda node, now: sid.append(node.call_stream(c.member("m2").addr, now=now)))  # type: ignore[attr-defined]
    c.run_for(1)
    assert (sid[0], "connection refused") in c.member("m1").node.closed  # type: ignore[attr-defined]


def test_crash_restart_and_leave() -> None:
    c = build(3, seed=6)
    c.run_until(3)
    old = c.member("m2").node
    c.crash("m2")
    assert not c.member("m2").up
    c.run_until(6)
    c.restart("m2", ["m0"])
    assert c.member("m2").node is not old
    assert c.member("m2").up
    c.leave("m1")
    c.run_until(8)
    assert c.member("m1").state == "left"
    assert [m.name for m in c.live()] == ["m0", "m2"]


def test_time_never_goes_backwards_and_ties_keep_order() -> None:
    c = build(1, seed=0)
    order: list[int] = []
    for i in range(5):
        c.at(2.0, order.append, i)
    c.run_until(3)
    assert order == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        c.clock.advance_to(1.0)


@pytest.mark.parametrize(
    ("text", "mean"),
    [("fixed:0.5", 0.5), ("0.25", 0.25), ("uniform:1,3", 2.0), ("exp:2", 2.0)],
)
def test_distributions_parse(text: str, mean: float) -> None:
    d = parse_distribution(text)
    assert d.mean() == pytest.approx(mean)
    rng = random.Random(1)
    assert abs(sum(d.sample(rng) for _ in range(20000)) / 20000 - mean) < 0.05 * mean + 1e-9


@pytest.mark.parametrize("text", ["norm:1", "exp:-1", "uniform:3,1", "fixed:a", "exp:1,2"])
def test_distributions_reject(text: str) -> None:
    with pytest.raises(ValueError):
        parse_distribution(text)


def test_false_deaths_count_each_killed_incarnation_once() -> None:
    from swimguard.protocol.events import MemberFailed
    from swimguard.protocol.members import Member, MemberState
    from swimguard.sim.report import FailureMetrics

    c = build(4, seed=1, trace=False)
    metrics = FailureMetrics(c)
    victim = c.member("m3")

    def failed(incarnation: int) -> list[MemberFailed]:
        return [MemberFailed(Member("m3", victim.addr, incarnation, MemberState.DEAD))]

    # m0 and m1 both time out on the same rumour, m2 only hears it: one death, two declarations
    metrics.on_events(1.0, c.member("m0"), failed(4), "timer")
    metrics.on_events(1.1, c.member("m1"), failed(4), "timer")
    metrics.on_events(1.2, c.member("m2"), failed(4), "input")
    # killed again after refuting with incarnation 5
    metrics.on_events(9.0, c.member("m1"), failed(5), "timer")
    assert (metrics.fp_total, metrics.fp_observed, metrics.fp_deaths) == (3, 4, 2)


def test_the_queue_refuses_to_move_the_clock_back() -> None:
    clock = VirtualClock(5.0)
    queue = EventQueue()
    ran: list[float] = []
    queue.push(6.0, ran.append, 6.0)
    queue.push(1.0, ran.append, 1.0)  # a bug in a driver: scheduled in the past
    with pytest.raises(RuntimeError, match="backwards"):
        queue.run_until(10.0, clock)
    assert ran == []


def test_stall_holds_inputs_and_fires_the_overdue_timer_first() -> None:
    c = build(2, seed=2, link=LinkModel(latency=Fixed(0.001)))
    c.run_until(5.05)
    m0 = c.member("m0").node
    log: list[tuple[str, float]] = []
    lag_of, receive = m0.report_loop_lag, m0.receive_datagram

    def report(lag: float, *, now: float) -> None:
        log.append(("timer", now))
        lag_of(lag, now=now)

    def got(data: bytes, sender: Address, *, now: float) -> None:
        log.append((data.decode(), now))
        receive(data, sender, now=now)

    m0.report_loop_lag = report  # type: ignore[method-assign]
    m0.receive_datagram = got  # type: ignore[method-assign]
    deadline = m0.next_deadline()
    assert deadline is not None
    c.stall("m0", 2.5)
    ping = Datagram(c.member("m0").addr, b"ping 99")
    c.call("m1", lambda node, now: node.out.append(ping))  # type: ignore[attr-defined]
    c.run_until(7.5)
    assert log == []  # frozen: nothing read, no timer
    c.run_until(7.6)
    assert log[:2] == [("timer", 7.55), ("ping 99", 7.55)]
    assert m0.lags[-1] == pytest.approx(7.55 - deadline)  # type: ignore[attr-defined]


def test_a_member_factory_builds_that_member_also_after_a_restart() -> None:
    built: list[str] = []

    def marked(name: str, addr: Address, rng: random.Random, *, now: float) -> FakeNode:
        built.append(name)
        return FakeNode(name, addr, rng, now=now)

    c = build(2, seed=1)
    c.add_member("x", ["m0"], factory=marked)
    c.crash("x")
    c.crash("m1")
    c.restart("x", ["m0"])
    c.restart("m1", ["m0"])
    assert built == ["x", "x"]


def test_udp_loss_on_one_link_leaves_streams_alone() -> None:
    c = build(3, seed=5)
    rec = Recorder()
    c.add_listener(rec)
    m1, m2 = c.member("m1"), c.member("m2")
    c.network.set_link(m1.index, m2.index, LinkModel(loss=1.0))
    c.run_for(0.01)
    start = c.now
    c.call("m1", lambda node, now: node.join([m2.addr], now=now))  # m1 now pings m2 too
    c.call("m1", lambda node, now: node.call_stream(m2.addr, now=now))  # type: ignore[attr-defined]
    c.run_for(20)
    assert not [r for r in m2.node.received if r[0] > start and r[1] == m1.addr]  # type: ignore[attr-defined]
    assert ("m2", b"stream:part1;part2") in [s[1:] for s in rec.seen]
    c.network.clear_link(m1.index, m2.index)
    c.run_for(20)
    assert [r for r in m2.node.received if r[0] > start and r[1] == m1.addr]  # type: ignore[attr-defined]
