"""`Node.stats`: the protocol counters move where the events happen (fake clocks only)."""

from __future__ import annotations

import dataclasses

from node_helpers import add_members, alive, dead, feed, make_node, suspect
from sim_support import add, join_all, names_of, node, node_cluster

from swimguard.config import Config
from swimguard.protocol.members import MemberState


def test_alive_suspect_dead_news_are_counted_once_each() -> None:
    n = make_node()
    start = n.stats.msg_alive  # our own alive at start
    add_members(n, "b", "c")
    assert n.stats.msg_alive == start + 2
    feed(n, alive("b"))  # stale: no change, not counted
    assert n.stats.msg_alive == start + 2
    feed(n, suspect("b"), now=1.0)
    feed(n, suspect("b", frm="y"), now=1.0)  # a confirmation, not a new suspicion
    assert (n.stats.msg_suspect, n.stats.suspicions_started) == (1, 1)
    feed(n, alive("b", inc=2), now=2.0)  # b refutes
    assert n.stats.suspicions_refuted == 1
    assert n.stats.msg_alive == start + 3
    feed(n, dead("c"), now=3.0)
    feed(n, dead("c"), now=3.0)
    assert n.stats.msg_dead == 1
    assert n.stats.suspicions_confirmed == 0


def test_suspicion_expiring_short_of_confirmations_is_a_degraded_timeout() -> None:
    n = make_node(Config.lan())
    add_members(n, "b", "c", "d", "e", "f")  # 6 members: Lifeguard wants k = 2 confirmations
    feed(n, suspect("b"), now=0.0)
    deadline = n.next_deadline()
    assert deadline is not None
    # Nobody confirms: the suspicion runs to its maximum and expires.
    n.handle_timeout(now=100.0)
    member = n.member("b")
    assert member is not None
    assert member.state is MemberState.DEAD
    assert (n.stats.suspicions_confirmed, n.stats.degraded_timeout, n.stats.msg_dead) == (1, 1, 1)


def test_fully_confirmed_suspicion_is_not_degraded() -> None:
    n = make_node(Config.lan())
    add_members(n, "b", "c", "d", "e", "f")
    feed(n, suspect("b", frm="c"), suspect("b", frm="d"), suspect("b", frm="e"), now=0.0)
    n.handle_timeout(now=100.0)
    assert (n.stats.suspicions_confirmed, n.stats.degraded_timeout) == (1, 0)


def test_refuting_a_suspicion_of_ourselves_is_counted() -> None:
    n = make_node()
    add_members(n, "b")
    feed(n, suspect("a", inc=1, frm="b"))
    feed(n, dead("a", inc=2, frm="b"))
    assert n.stats.refutations == 2
    assert n.stats.suspicions_started == 0


def test_a_crash_in_a_simulated_cluster_moves_probe_counters() -> None:
    config = dataclasses.replace(Config.local(), awareness_max_multiplier=8)
    cluster, _ = node_cluster(config)
    for name in "abcd":
        add(cluster, name, config)
    join_all(cluster)
    assert cluster.run_until_true(
        lambda: all(names_of(node(cluster, x), "ALIVE") == set("abcd") for x in "abcd"),
        cluster.now + 5.0,
    )
    a = node(cluster, "a")
    probes_before = a.stats.probe_node.count
    cluster.crash("d")
    assert cluster.run_until_true(lambda: "d" in names_of(a, "DEAD"), cluster.now + 60.0)
    st = a.stats
    assert st.probe_node.count > probes_before
    assert st.gossip_rounds > 0
    b_push_pulls = node(cluster, "b").stats.push_pull_node
    assert b_push_pulls.count >= 1  # its join (and perhaps periodic ones since)
    assert b_push_pulls.sum > 0  # a round trip on the simulated network takes time
    # Some member's own probe of d failed, and each of those probes is in the histogram.
    failed = sum(node(cluster, x).stats.probe_failed for x in "abc")
    assert failed >= 1


def test_a_probe_started_while_unhealthy_is_a_degraded_probe() -> None:
    n = make_node(Config.lan())
    add_members(n, "b")
    n.handle_timeout(now=10.0)  # probe b while healthy
    assert n.stats.degraded_probe == 0
    assert n.stats.probe_node.count == 0  # still waiting for the ack
    n.handle_timeout(now=20.0)  # no ack: the probe failed (and b is suspect)
    assert (n.stats.probe_node.count, n.stats.probe_failed) == (1, 1)
    feed(n, suspect("a", inc=1, frm="b"), now=20.0)  # refuting raises our score
    assert n.health_score > 0
    feed(n, alive("b", inc=5), now=20.0)  # b is fine after all
    n.handle_timeout(now=40.0)  # the next probe runs on a scaled interval
    assert n.stats.degraded_probe == 1
