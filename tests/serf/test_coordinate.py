"""The Vivaldi client: Serf's rules (spec/serf-rpc.md §3.1) as known values, and convergence.

Known values are either figures Serf's own tests assert (distances, unit vectors, forces,
the latency filter's medians) or one update worked by hand from the spec's formulas.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import statistics
import sys

import pytest

from swimguard.serf.coordinate import (
    ABSURD_SECONDS,
    Coordinate,
    CoordinateRejected,
    VivaldiClient,
    VivaldiConfig,
    apply_force,
    check_coordinate,
    estimate_rtt,
)

D3 = VivaldiConfig(dimensionality=3)
D3_FLAT = VivaldiConfig(dimensionality=3, height_min=0.0)


def at(config: VivaldiConfig, *vec: float, **fields: float) -> Coordinate:
    return dataclasses.replace(Coordinate.origin(config), vec=tuple(vec), **fields)


def test_defaults_are_serfs() -> None:
    cfg = VivaldiConfig()
    assert (cfg.dimensionality, cfg.error_max, cfg.ce, cfg.cc) == (8, 1.5, 0.25, 0.25)
    assert (cfg.adjustment_window, cfg.height_min, cfg.latency_filter_size) == (20, 1e-5, 3)
    assert cfg.gravity_rho == 150.0
    assert Coordinate.origin() == Coordinate(
        vec=(0.0,) * 8, error=1.5, adjustment=0.0, height=1e-5
    )


def test_distance_known_values() -> None:
    a = at(D3_FLAT, -0.5, 1.3, 2.4)
    b = at(D3_FLAT, 1.2, -2.3, 3.4)
    assert a.distance_to(a) == 0.0
    assert a.distance_to(b) == pytest.approx(4.104875150354758, abs=1e-12)
    assert b.distance_to(a) == a.distance_to(b)
    # A negative adjustment that would make the estimate negative is ignored ...
    assert dataclasses.replace(a, adjustment=-1e6).distance_to(b) == pytest.approx(
        4.104875150354758, abs=1e-12
    )
    # ... positive ones and the heights add up; the raw distance ignores adjustments.
    a2 = dataclasses.replace(a, adjustment=0.1, height=0.7)
    b2 = dataclasses.replace(b, adjustment=0.2, height=0.1)
    assert estimate_rtt(a2, b2) == pytest.approx(4.104875150354758 + 0.3 + 0.8, abs=1e-12)
    assert a2.raw_distance_to(b2) == pytest.approx(4.104875150354758 + 0.8, abs=1e-12)


def test_distance_needs_equal_dimensions() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        Coordinate.origin(D3).distance_to(Coordinate.origin())


def test_apply_force_known_values() -> None:
    rng = random.Random(1)
    origin = Coordinate.origin(D3_FLAT)
    above = at(D3_FLAT, 0.0, 0.0, 2.9)
    c = apply_force(D3_FLAT, origin, 5.3, above, rng)
    assert c.vec == pytest.approx((0.0, 0.0, -5.3))
    right = at(D3_FLAT, 3.4, 0.0, -5.3)
    c = apply_force(D3_FLAT, c, 2.0, right, rng)
    assert c.vec == pytest.approx((-2.0, 0.0, -5.3))
    # Coinciding points: a random direction, one unit of force away.
    c = apply_force(D3_FLAT, origin, 1.0, origin, rng)
    assert origin.distance_to(c) == pytest.approx(1.0)

    # With a minimum height, the height grows with the push and never goes below it.
    origin = Coordinate.origin(D3)  # height 1e-5; `above` keeps height 0
    c = apply_force(D3, origin, 5.3, above, rng)
    assert c.height == pytest.approx(1e-5 + 5.3 * 1e-5 / 2.9)
    c = apply_force(D3, origin, -5.3, above, rng)
    assert c.vec == pytest.approx((0.0, 0.0, 5.3))
    assert c.height == 1e-5


def test_latency_filter_takes_the_median_of_three() -> None:
    client = VivaldiClient(rng=random.Random(1))
    medians = [
        client._latency_filter("alice", rtt)
        for rtt in (0.201, 0.200, 0.207, 1.9, 0.203, 0.199, 0.211)
    ]
    # The 1.9 s glitch never reaches Vivaldi.
    assert medians == [0.201, 0.201, 0.201, 0.207, 0.207, 0.203, 0.203]
    assert client._latency_filter("bob", 0.310) == 0.310
    client.forget("alice")
    assert client._latency_filter("alice", 0.888) == 0.888
    assert client.tracked == 2


def test_one_update_worked_by_hand() -> None:
    """Client at the origin; a peer 1 ms "above" answers in 2 ms (further than predicted)."""
    client = VivaldiClient(D3, rng=random.Random(1))
    other = at(D3, 0.0, 0.0, 0.001)
    assert client.update("node", other, 0.002) is None
    c = client.coordinate

    h = 1e-5
    dist = 0.001 + 2 * h  # distance before the update
    wrongness = abs(dist - 0.002) / 0.002
    weight = 1.5 / (1.5 + 1.5)
    error = 0.25 * weight * wrongness + 1.5 * (1 - 0.25 * weight)
    force = 0.25 * weight * (0.002 - dist)
    z = -force  # pushed straight down, away from the peer
    height = (h + h) * force / 0.001 + h
    adjustment = (0.002 - ((0.001 - z) + height + h)) / (2 * 20)
    # Gravity: a tiny pull back towards the origin.
    g_dist = (abs(z) + height + h) + adjustment
    g_force = -((g_dist / 150.0) ** 2)
    z_final = z - g_force  # the unit vector from the origin points down
    height_final = max((height + h) * g_force / abs(z) + height, h)

    assert c.error == pytest.approx(error, abs=1e-15)
    assert c.vec == pytest.approx((0.0, 0.0, z_final), abs=1e-15)
    assert c.height == pytest.approx(height_final, abs=1e-15)
    assert c.adjustment == pytest.approx(adjustment, abs=1e-15)
    assert c.vec[2] < 0.0  # moved away from a peer that answered late


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        (at(D3, 0.0, math.nan, 0.0), CoordinateRejected.NOT_FINITE),
        (at(D3, 0.0, 0.0, math.inf), CoordinateRejected.NOT_FINITE),
        (at(D3, 0.0, 0.0, 0.0, error=math.nan), CoordinateRejected.NOT_FINITE),
        (at(D3, 0.0, 0.0, 0.0, height=-math.inf), CoordinateRejected.NOT_FINITE),
        (at(D3, 0.0, 0.0, 0.0, adjustment=math.nan), CoordinateRejected.NOT_FINITE),
        (at(D3, 0.0, 0.0), CoordinateRejected.WRONG_DIMENSION),
        (at(D3, *([0.0] * 6)), CoordinateRejected.WRONG_DIMENSION),
        (at(D3, 0.0, ABSURD_SECONDS * 2, 0.0), CoordinateRejected.ABSURD),
        (at(D3, 0.0, 0.0, 0.0, adjustment=-ABSURD_SECONDS * 2), CoordinateRejected.ABSURD),
        (at(D3, 0.0, 0.0, 0.0, error=-0.1), CoordinateRejected.ABSURD),
        (at(D3, 0.0, 0.0, 0.0, height=-1e-5), CoordinateRejected.ABSURD),
        (at(D3, 0.0, 0.0, 0.0, error=1e300), CoordinateRejected.ABSURD),
    ],
)
def test_bad_coordinates_are_refused_and_change_nothing(
    other: Coordinate, reason: CoordinateRejected
) -> None:
    client = VivaldiClient(D3, rng=random.Random(1))
    client.update("warm", at(D3, 0.0, 0.001, 0.0), 0.003)
    before = client.coordinate
    assert check_coordinate(other, D3) is reason
    assert client.update("node", other, 0.002) is reason
    assert client.coordinate == before
    assert client.set_coordinate(other) is reason
    assert client.coordinate == before
    assert client.tracked == 1  # the refused sample left no filter behind


@pytest.mark.parametrize("rtt", [-0.035, 10.001, 1e30, math.nan, math.inf])
def test_rtt_out_of_range_is_refused(rtt: float) -> None:
    client = VivaldiClient(D3, rng=random.Random(1))
    other = at(D3, 0.0, 0.0, 0.001)
    before = client.coordinate.distance_to(other)
    assert client.update("node", other, rtt) is CoordinateRejected.RTT_OUT_OF_RANGE
    assert client.coordinate.distance_to(other) == before


def test_zero_and_max_rtt_are_accepted() -> None:
    client = VivaldiClient(D3, rng=random.Random(1))
    other = at(D3, 0.0, 0.0, 0.001)
    assert client.update("a", other, 0.0) is None
    assert client.update("b", other, 10.0) is None
    assert client.coordinate.is_finite()


def test_a_poisoned_coordinate_resets_to_the_origin() -> None:
    client = VivaldiClient(D3, rng=random.Random(1))
    client._coord = at(D3, math.nan, 0.0, 0.0)
    assert client.update("node", Coordinate.origin(D3), 0.25) is None
    assert client.coordinate.is_finite()
    assert client.resets == 1


def test_set_coordinate_accepts_a_sane_one() -> None:
    client = VivaldiClient(D3, rng=random.Random(1))
    c = at(D3, 0.0, 0.0, 99.0)
    assert client.set_coordinate(c) is None
    assert client.coordinate == c


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="dimensionality"):
        VivaldiConfig(dimensionality=0)
    with pytest.raises(ValueError, match="latency_filter_size"):
        VivaldiConfig(latency_filter_size=0)


# -- convergence on known geometries (synthetic RTTs, no network) ----------------------------


def simulate(
    truth: list[list[float]],
    cycles: int,
    seed: int,
    config: VivaldiConfig | None = None,
    clients: list[VivaldiClient] | None = None,
) -> list[VivaldiClient]:
    """Each cycle, every member samples one random other member's true RTT."""
    rng = random.Random(seed)
    if clients is None:
        cfg = config or VivaldiConfig()
        clients = [VivaldiClient(cfg, rng=random.Random(f"{seed}/{i}")) for i in range(len(truth))]
    for _ in range(cycles):
        for i, client in enumerate(clients):
            j = rng.randrange(len(clients))
            if j != i:
                client.update(f"node_{j}", clients[j].coordinate, truth[i][j])
    return clients


def relative_errors(clients: list[VivaldiClient], truth: list[list[float]]) -> list[float]:
    errors = []
    for i, a in enumerate(clients):
        for j in range(i + 1, len(clients)):
            est = estimate_rtt(a.coordinate, clients[j].coordinate)
            errors.append(abs(est - truth[i][j]) / truth[i][j])
    return errors


def line(n: int, spacing: float) -> list[list[float]]:
    return [[abs(i - j) * spacing for j in range(n)] for i in range(n)]


def grid(n: int, spacing: float) -> list[list[float]]:
    side = math.isqrt(n)
    pos = [(i // side, i % side) for i in range(n)]
    return [
        [math.dist(pos[i], pos[j]) * spacing for j in range(n)] for i in range(n)
    ]


def split(n: int, lan: float, wan: float) -> list[list[float]]:
    half = n // 2
    return [
        [0.0 if i == j else (lan if (i < half) == (j < half) else wan) for j in range(n)]
        for i in range(n)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("name", "truth", "avg_max", "worst_max"),
    [
        # Serf's performance tests bound these geometries after 1000 cycles at 0.18 % /
        # 0.92 % (line), 0.15 % / 2.2 % (grid), 0.006 % / 0.048 % (split), tuned to one
        # stream of Go's random numbers. Over our seeds the figures spread (split: 0.005 %
        # to 0.5 % on average, the slow seeds stall in a local minimum), so the bounds
        # here hold for every seed while a broken rule still misses them by far.
        ("line", line(10, 0.010), 0.005, 0.03),
        ("grid", grid(25, 0.010), 0.003, 0.03),
        ("split", split(25, 0.001, 0.010), 0.01, 0.06),
    ],
)
def test_converges_on_known_geometry(
    name: str, truth: list[list[float]], avg_max: float, worst_max: float, seed: int
) -> None:
    clients = simulate(truth, cycles=1000, seed=seed)
    errors = relative_errors(clients, truth)
    assert statistics.fmean(errors) <= avg_max, name
    assert max(errors) <= worst_max, name
    assert all(c.resets == 0 for c in clients)


def test_a_fresh_client_is_far_off() -> None:
    """The convergence bounds above are not met by doing nothing."""
    truth = grid(25, 0.010)
    errors = relative_errors(simulate(truth, cycles=0, seed=1), truth)
    assert statistics.fmean(errors) > 0.5


def circle(n: int, radius: float) -> list[list[float]]:
    """m0 is equally far (2 x radius) from everyone on a circle: it can only be "above" them."""
    points = [(math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)) for i in range(n)]
    return [
        [
            0.0 if i == j
            else 2 * radius if 0 in (i, j)
            else math.dist(points[i], points[j]) * radius
            for j in range(n)
        ]
        for i in range(n)
    ]


def test_height_takes_what_the_plane_cannot_hold() -> None:
    """In two dimensions, the centre member's extra delay ends up in its height."""
    radius = 0.100
    clients = simulate(circle(25, radius), cycles=1000, seed=1,
                       config=VivaldiConfig(dimensionality=2))
    assert clients[0].coordinate.height >= 0.97 * radius
    assert all(c.coordinate.height <= 0.03 * radius for c in clients[1:])


def test_gravity_pulls_the_cluster_back_towards_the_origin() -> None:
    """Four members placed off-centre: the centre of their box drifts back to the origin."""
    d = 0.5
    cfg = VivaldiConfig(dimensionality=2)
    clients = [VivaldiClient(cfg, rng=random.Random(i)) for i in range(4)]
    for client, vec in zip(clients, [(0.0, 0.0), (0.0, d), (d, d), (d, d)], strict=True):
        assert client.set_coordinate(dataclasses.replace(client.coordinate, vec=vec)) is None
    truth = [
        [0.0 if i == j else d * (math.sqrt(2) if i % 2 == 0 and j % 2 == 0 else 1.0)
         for j in range(4)]
        for i in range(4)
    ]

    def centre_offset() -> float:
        lo = [min(c.coordinate.vec[k] for c in clients) for k in range(2)]
        hi = [max(c.coordinate.vec[k] for c in clients) for k in range(2)]
        return math.hypot(*((a + b) / 2 for a, b in zip(lo, hi, strict=True)))

    simulate(truth, cycles=1000, seed=1, clients=clients)
    baseline = centre_offset()
    simulate(truth, cycles=10000, seed=2, clients=clients)
    assert centre_offset() <= 0.8 * baseline



def test_updates_are_bit_for_bit_those_of_the_step_by_step_rule() -> None:
    # A fused update (one pass over plain floats, for speed) must give the very floats the
    # step-by-step rule gave (apply_force, distance_to, the adjustment window, gravity, in
    # Serf's order). The digest was taken from that version over 3,000 samples covering zero
    # and tiny round-trip times, ones near the 10 s limit and peers that coincide with us.
    rng = random.Random(3)
    clients = [VivaldiClient(rng=random.Random(i)) for i in range(6)]
    digest = hashlib.sha256()
    for step in range(3000):
        i, j = rng.sample(range(6), 2)
        rtt = rng.choice([0.0, 1e-7, rng.random() * 0.01, rng.random() * 2, 9.99])
        other = clients[i if step % 97 == 0 else j].coordinate
        assert clients[i].update(f"n{j}", other, rtt) is None
        c = clients[i].coordinate
        digest.update(repr((c.vec, c.error, c.adjustment, c.height)).encode())
    # Python 3.12 made the builtin sum() of floats compensated (Neumaier), so the floats
    # differ in their last bits from 3.11's: one digest per side, both taken from the
    # step-by-step rule (fedfaaa^) on 3.11.7, 3.12.1 and 3.13.0, where it equals the fused one.
    expected = (
        "fa0370cc44e3805e523a702761d7c4d8046488a3fc7d36bb3e178c1a215c621a"
        if sys.version_info < (3, 12)
        else "615ff477a571e28fe20d5f303c14cd09370b34ee18ddc6670d3508ce35cf2a82"
    )
    assert digest.hexdigest() == expected
