"""Vivaldi coordinates through the whole `SerfNode`, in the simulator with per-link latency.

The members sit on a line (or in two sites); every link's one-way delay is fixed, so each
probe's RTT is exactly twice it. The coordinates only learn from the acks the nodes really
send and receive (ack payload out, `PingCompleted` in), so this checks the wiring and the
rule together: after a few hundred probe rounds every member's estimate of every pair
matches the geometry.
"""

from __future__ import annotations

import math
import random
import statistics

import msgpack
import pytest
from sim_helpers import replay

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI, NodeFactory
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.serf.coordinate import Coordinate, estimate_rtt
from swimguard.serf.coordinate_exchange import decode_ack_payload
from swimguard.serf.node import SerfNode
from swimguard.sim.cluster import SimCluster
from swimguard.sim.distributions import Fixed
from swimguard.sim.network import LinkModel
from swimguard.sim.scenarios import start_cluster


def serf_factory(config: Config) -> NodeFactory:
    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        node: NodeAPI = SerfNode(config, name=name, advertise=addr, rng=rng, now=now)  # type: ignore[assignment]
        return node

    return make


def geometric_cluster(n: int, seed: int, one_way: list[list[float]], test: str) -> SimCluster:
    c = start_cluster(
        n,
        seed=seed,
        factory=serf_factory(Config.lan()),
        link=LinkModel(latency=Fixed(0.0005)),
        settle=30.0,
        replay_hint=replay(test, seed),
    )
    for i in range(n):
        for j in range(n):
            if i != j:
                c.network.set_link(i, j, LinkModel(latency=Fixed(one_way[i][j])))
    return c


def coords_of(c: SimCluster, name: str) -> SerfNode:
    node = c.member(name).node
    assert isinstance(node, SerfNode)
    return node


def relative_errors(c: SimCluster, rtt: list[list[float]], observer: str) -> list[float]:
    """`observer`'s estimate of every pair, from its cache, against the true RTTs."""
    ex = coords_of(c, observer).coordinates
    n = len(rtt)
    errors = []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = ex.coordinate(f"m{i}"), ex.coordinate(f"m{j}")
            assert a is not None, f"{observer} has no coordinate for m{i}"
            assert b is not None, f"{observer} has no coordinate for m{j}"
            errors.append(abs(estimate_rtt(a, b) - rtt[i][j]) / rtt[i][j])
    return errors


def test_coordinates_learn_a_line(sim_seed: int) -> None:
    n = 6
    one_way = [[abs(i - j) * 0.005 for j in range(n)] for i in range(n)]
    rtt = [[2 * d for d in row] for row in one_way]
    c = geometric_cluster(n, sim_seed, one_way, "test_sim_coordinates.py")
    c.run_for(600.0)
    for m in range(n):
        node = coords_of(c, f"m{m}")
        assert node.coordinates.updates > 100
        assert node.coordinates.resets == 0
        assert not any(k.startswith("serf_coordinate") for k in node.drops)
        errors = relative_errors(c, rtt, f"m{m}")
        assert statistics.fmean(errors) < 0.01, (m, errors)
        assert max(errors) < 0.05, (m, errors)


def test_coordinates_separate_two_sites(sim_seed: int) -> None:
    n = 6
    site = [i < n // 2 for i in range(n)]
    one_way = [[0.0005 if site[i] == site[j] else 0.020 for j in range(n)] for i in range(n)]
    c = geometric_cluster(n, sim_seed, one_way, "test_sim_coordinates.py")
    c.run_for(600.0)
    ex = coords_of(c, "m0").coordinates
    near, far = ex.coordinate("m1"), ex.coordinate("m4")
    assert near is not None
    assert far is not None
    assert estimate_rtt(ex.own, near) < 0.005
    assert 0.030 < estimate_rtt(ex.own, far) < 0.050


def test_acks_carry_the_current_coordinate(sim_seed: int) -> None:
    """What a member sends in its acks is what it holds (and decodes as a sane coordinate)."""
    c = geometric_cluster(3, sim_seed, [[0.0, 0.01, 0.01], [0.01, 0.0, 0.01], [0.01, 0.01, 0.0]],
                          "test_sim_coordinates.py")
    c.run_for(60.0)
    node = coords_of(c, "m1")
    assert node.coordinates.own != Coordinate.origin()
    assert decode_ack_payload(node.coordinates.ack_payload()) == node.coordinates.own
    # Its peers cached that coordinate, or the one before it.
    seen = coords_of(c, "m0").coordinates.coordinate("m1")
    assert seen is not None
    assert seen.vec != Coordinate.origin().vec


class PingRecorder:
    """An application's ping hook: records the pings; optionally brings its own payload."""

    def __init__(self) -> None:
        self.pings: list[tuple[str, float]] = []

    def notify_ping_complete(self, member: object, rtt: float, payload: bytes) -> None:
        self.pings.append((getattr(member, "name", "?"), rtt))


class OwnPayload(PingRecorder):
    def ack_payload(self) -> bytes:
        return b"\x09app"


def hooked_cluster(seed: int, hooks: dict[str, object]) -> SimCluster:
    config = Config.lan()

    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        node: NodeAPI = SerfNode(  # type: ignore[assignment]
            config, name=name, advertise=addr, rng=rng, now=now, hooks=hooks.get(name)
        )
        return node

    c = start_cluster(3, seed=seed, factory=make, link=LinkModel(latency=Fixed(0.002)),
                      settle=30.0, replay_hint=replay("test_sim_coordinates.py", seed))
    c.run_for(30.0)
    return c


def test_an_applications_ping_hook_still_hears_every_ping(sim_seed: int) -> None:
    recorder = PingRecorder()
    c = hooked_cluster(sim_seed, {"m0": recorder})
    node = coords_of(c, "m0")
    assert len(recorder.pings) == node.coordinates.updates > 10
    assert [rtt for _, rtt in recorder.pings] == pytest.approx([0.004] * len(recorder.pings))


def test_an_applications_ack_payload_wins(sim_seed: int) -> None:
    """Its payload is not a coordinate: the peers count it and keep no coordinate for it."""
    c = hooked_cluster(sim_seed, {"m0": OwnPayload()})
    for peer in ("m1", "m2"):
        node = coords_of(c, peer)
        assert node.coordinates.coordinate("m0") is None
        assert node.drops["serf_coordinate_bad_version"] > 0
        assert node.coordinates.coordinate("m1" if peer == "m2" else "m2") is not None


class HostilePayload(PingRecorder):
    """A member whose acks carry a crafted payload instead of its coordinate."""

    def __init__(self, payload: bytes) -> None:
        super().__init__()
        self.payload = payload

    def ack_payload(self) -> bytes:
        return self.payload


def crafted(**fields: object) -> bytes:
    body: dict[str, object] = {"Adjustment": 0.0, "Error": 0.5, "Height": 1e-5, "Vec": [0.0] * 8}
    body.update(fields)
    return b"\x01" + msgpack.packb(body, use_bin_type=False)


@pytest.mark.parametrize(
    ("payload", "counter"),
    [
        (crafted(Vec=[math.nan] * 8), "serf_coordinate_not_finite"),
        (crafted(Height=math.inf), "serf_coordinate_not_finite"),
        (crafted(Vec=[0.0] * 7), "serf_coordinate_wrong_dimension"),
        (crafted(Vec=[1e12] * 8), "serf_coordinate_absurd"),
        (crafted(Error=-5.0), "serf_coordinate_absurd"),
        (b"\x01\xde\xff\xff", "serf_coordinate_undecodable"),
        (b"\x01" + b"\xff" * 200, "serf_coordinate_undecodable"),
    ],
)
def test_hostile_ack_payloads_are_counted_and_never_stored(
    sim_seed: int, payload: bytes, counter: str
) -> None:
    """m0's acks carry the payload; the others refuse it and still learn from each other."""
    c = hooked_cluster(sim_seed, {"m0": HostilePayload(payload)})
    for peer in ("m1", "m2"):
        node = coords_of(c, peer)
        assert node.drops[counter] > 0
        assert node.coordinates.coordinate("m0") is None
        own = node.coordinates.own
        assert own.is_finite()
        assert decode_ack_payload(node.coordinates.ack_payload()) == own
        other = "m1" if peer == "m2" else "m2"
        assert node.coordinates.coordinate(other) is not None


def test_a_failed_members_coordinate_outlives_its_failure_then_goes(sim_seed: int) -> None:
    """Kept while Serf would still list it (here 60 s instead of Serf's 24 h), then dropped."""
    c = geometric_cluster(3, sim_seed, [[0.0, 0.01, 0.01], [0.01, 0.0, 0.01], [0.01, 0.01, 0.0]],
                          "test_sim_coordinates.py")
    c.run_for(30.0)
    ex = coords_of(c, "m0").coordinates
    ex._retention = 60.0
    assert ex.coordinate("m2") is not None
    c.crash("m2")
    assert c.run_until_true(lambda: state_in(c, "m0", "m2") is MemberState.DEAD, c.now + 60.0)
    assert ex.coordinate("m2") is not None  # like `serf rtt` for a failed member
    c.run_for(30.0)
    assert ex.coordinate("m2") is not None
    c.run_for(40.0)
    assert ex.coordinate("m2") is None
    assert ex.coordinate("m1") is not None
    assert ex.client.tracked == 1


def state_in(c: SimCluster, observer: str, name: str) -> MemberState | None:
    return next((m.state for m in coords_of(c, observer).members() if m.name == name), None)
