"""Issue 10, finding 5: the top of the uint32 incarnation range.

memberlist compares incarnations as plain uint32 (no serial-number arithmetic), so
nothing can outbid an accusation at 0xFFFFFFFF: every peer, Go or ours, ignores an
alive at or below what it holds. Such an accusation only comes from a forged message
(a member refutes one step at a time), and it fails the member whatever we do. What we
decide is how the member comes back:

* It must not wrap to 0. memberlist creates an unknown member's record at incarnation 0
  and ignores an alive that is not newer, so an alive at 0 is never accepted, not even
  once the peers have reaped the dead record: the member stayed failed (the finding).
* It must not saturate at 0xFFFFFFFF either: re-added at the top, the member could never
  refute again and every later missed probe would be a false failure.
* So it restarts at 1 (`Node.incarnation_restarts` counts it). Peers holding the top
  declare it dead and reap the record after `gossip_to_the_dead_time`; its next push/pull
  (or any gossip of its alive) then re-adds it at a low incarnation, as a new member.
"""

from __future__ import annotations

import ipaddress

from node_helpers import IP, VSN, make_node, packet
from sim_support import add, join_all, names_of, node, node_cluster

from swimguard.config import Config
from swimguard.wire.messages import Alive, Suspect
from swimguard.wire.packet import Message

TOP = 0xFFFF_FFFF
ATTACKER = ("127.0.0.1", 9)


def own_alive_incarnations(messages: list[Message], name: str) -> list[int]:
    return [m.incarnation for m in messages if isinstance(m, Alive) and m.node == name]


def test_refuting_an_accusation_at_the_top_restarts_at_one_never_zero() -> None:
    from node_helpers import feed, sent_messages

    node = make_node(name="a")
    feed(node, Alive(incarnation=1, node="b", addr=IP, port=7001, vsn=VSN))
    node.take_outgoing()
    feed(node, Suspect(incarnation=TOP, node="a", from_="b"), now=1.0)
    assert node.local_member.incarnation == 1
    assert node.incarnation_restarts == 1
    node.handle_timeout(now=1.3)
    assert set(own_alive_incarnations(sent_messages(node.take_outgoing()), "a")) == {1}
    # Below the top the refutation outbids the accusation as memberlist's does.
    feed(node, Suspect(incarnation=TOP - 1, node="a", from_="b"), now=2.0)
    assert node.local_member.incarnation == TOP
    assert node.incarnation_restarts == 1


def test_a_go_style_peer_ignores_an_alive_at_zero_but_takes_one_after_reaping() -> None:
    """What a memberlist peer does with our refutation, shown with our own peer rules."""
    peer = make_node(name="b")
    peer.receive_datagram(packet(Alive(incarnation=0, node="a", addr=IP, port=7005, vsn=VSN)),
                          ATTACKER, now=1.0)
    created = peer.member("a")
    assert created is not None
    assert created.state.name == "DEAD"  # memberlist keeps it dead at 0: ignored
    peer.receive_datagram(packet(Alive(incarnation=1, node="a", addr=IP, port=7005, vsn=VSN)),
                          ATTACKER, now=1.0)
    assert peer.member("a").state.name == "ALIVE"  # type: ignore[union-attr]


def test_forged_top_incarnation_fails_the_member_once_then_it_comes_back() -> None:
    config = Config.local()
    cluster, _ = node_cluster(config, seed=3)
    for name in ("a", "b", "c"):
        add(cluster, name, config)
    join_all(cluster)
    assert cluster.run_until_true(
        lambda: all(len(names_of(node(cluster, n), "ALIVE")) == 3 for n in "abc"),
        cluster.now + 30)
    a_addr = cluster.member("a").addr
    a_ip = ipaddress.ip_address(a_addr[0]).packed
    forged = packet(
        Alive(incarnation=TOP, node="a", addr=a_ip, port=a_addr[1], vsn=VSN),
        Suspect(incarnation=TOP, node="a", from_="mallory"),
    )
    for name in ("b", "c", "a"):
        cluster.call(name, lambda n, now: n.receive_datagram(forged, ATTACKER, now=now))
    node_a = node(cluster, "a")
    assert node_a.incarnation_restarts >= 1
    assert 0 < node_a.local_member.incarnation < 10
    # The peers cannot take a refutation above the top: they fail "a" (memberlist does too)...
    assert cluster.run_until_true(
        lambda: "a" not in names_of(node(cluster, "b"), "ALIVE", "SUSPECT"), cluster.now + 60)
    # ...and take it back at a low incarnation once the dead record has been reaped.
    budget = (config.gossip_to_the_dead_time + 4 * config.push_pull_interval
              + 10 * config.probe_interval)
    assert cluster.run_until_true(
        lambda: all("a" in names_of(node(cluster, n), "ALIVE") for n in "bc"),
        cluster.now + budget)
    for n in "bc":
        member = node(cluster, n).member("a")
        assert member is not None
        assert member.incarnation < 100
    assert "a" in names_of(node_a, "ALIVE")
