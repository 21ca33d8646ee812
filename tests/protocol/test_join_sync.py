"""Join-time sync (`Config.join_sync_delay`, `protocol.join_sync`): after a successful join
the first periodic push/pull waits for the member table to stop changing, at most one
interval; a failed join, the extension off or push/pull off leave memberlist's timing."""

from __future__ import annotations

import pytest
from node_helpers import add_members, framed, make_node, push_pull, run_until, state

from swimguard.config import Config
from swimguard.protocol import StreamOpen, StreamSend
from swimguard.protocol.join_sync import JoinSync
from swimguard.protocol.node import Node
from swimguard.wire.messages import ErrResp
from swimguard.wire.stream import PushPull, StreamDecoder

SEED = ("127.0.0.1", 5555)


def test_rule_syncs_delay_after_the_join_when_the_table_is_stable() -> None:
    sync = JoinSync(2.0, 30.0)
    assert sync.joined(now=10.0, table_size=5) == 12.0
    assert sync.pending
    assert sync.tick(now=12.0, table_size=5, jitter=0.0) is None  # push/pull now
    assert not sync.pending
    assert sync.tick(now=40.0, table_size=9, jitter=0.0) is None  # later ticks: periodic


def test_rule_waits_while_the_table_changes_but_not_past_one_interval() -> None:
    sync = JoinSync(2.0, 30.0)
    sync.joined(now=0.0, table_size=5)
    assert sync.tick(now=2.0, table_size=8, jitter=0.0) == 4.0
    assert sync.tick(now=4.0, table_size=9, jitter=0.5) == 6.5  # jitter spreads a storm
    size, now = 9, 6.5
    while (later := sync.tick(now=now, table_size=size + 1, jitter=0.0)) is not None:
        assert later <= 30.0
        size, now = size + 1, later
    assert now == 30.0  # a table that never settles still syncs one interval after the join
    assert not sync.pending


def test_rule_is_off_without_delay_or_without_periodic_push_pull() -> None:
    for sync in (JoinSync(0.0, 30.0), JoinSync(2.0, 0.0)):
        assert sync.joined(now=1.0, table_size=3) is None
        assert not sync.pending
        assert sync.tick(now=3.0, table_size=4, jitter=0.0) is None


def test_a_second_join_keeps_the_first_cap() -> None:
    sync = JoinSync(2.0, 30.0)
    sync.joined(now=0.0, table_size=2)
    assert sync.joined(now=29.0, table_size=3) == 30.0


def test_config_rejects_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="join_sync_delay"):
        Config.lan(join_sync_delay=-1.0)


def _joined(config: Config, *, reply: bool = True) -> Node:
    """A node that knows "b", joined SEED at t=0, answered at t=0.5 with two members (or
    an error)."""
    node = make_node(config)
    add_members(node, "b")
    node.join([SEED], now=0.0)
    (op,) = [o for o in node.take_outgoing() if isinstance(o, StreamOpen)]
    answer = push_pull(state("p"), state("q")) if reply else ErrResp(error="no")
    node.stream_data(op.stream_id, framed(answer), now=0.5)
    node.take_outgoing()
    node.take_events()
    return node


def _push_pulls(node: Node, until: float) -> list[tuple[float, bool]]:
    """(time, join flag) of each push/pull the node starts up to `until`."""
    run = run_until(node, until, answer_pings=True)
    out = []
    for t, o in run.sent:
        if isinstance(o, StreamSend):
            msg = StreamDecoder().feed(o.data)
            if isinstance(msg, PushPull):
                out.append((t, msg.header.join))
    return out


def _first_periodic(config: Config) -> float:
    """When a fresh node (same rng) that knows "b" runs its first periodic push/pull."""
    node = make_node(config)
    add_members(node, "b")
    node.take_outgoing()
    return _push_pulls(node, 100.0)[0][0]


def test_a_successful_join_syncs_delay_seconds_later_then_keeps_the_period() -> None:
    config = Config.lan(push_pull_interval=30.0, join_sync_delay=2.0)
    assert _first_periodic(config) > 2.5  # so the rule has something to bring forward
    node = _joined(config)
    times = _push_pulls(node, 70.0)
    assert times[0] == (pytest.approx(2.5), False)  # anti-entropy, not another join
    assert [t for t, _ in times[1:3]] == [pytest.approx(32.5), pytest.approx(62.5)]


def test_the_sync_waits_for_members_still_arriving() -> None:
    config = Config.lan(push_pull_interval=30.0, join_sync_delay=2.0)
    node = _joined(config)
    run_until(node, 2.0, answer_pings=True)
    add_members(node, "late", now=2.0)  # the storm goes on: not yet
    times = [t for t, _ in _push_pulls(node, 30.0)]
    assert len(times) == 1
    assert 4.5 <= times[0] <= 5.5  # one more delay (with up to half of it as jitter)


def test_without_the_extension_the_first_push_pull_keeps_its_random_time() -> None:
    config = Config.lan(push_pull_interval=30.0, join_sync_delay=0.0)
    first = _first_periodic(config)
    node = _joined(config)
    times = _push_pulls(node, first)
    assert [t for t, _ in times] == [first]


def test_a_failed_join_does_not_sync() -> None:
    config = Config.lan(push_pull_interval=30.0, join_sync_delay=2.0)
    first = _first_periodic(config)
    node = _joined(config, reply=False)
    assert [t for t, _ in _push_pulls(node, first)] == [first]
