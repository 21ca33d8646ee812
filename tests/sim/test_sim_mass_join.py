"""A mass join on the simulator (issue 17): 80 members started within 2 virtual s, each
joining one random earlier member. With the join-time sync (`Config.join_sync_delay` =
2.0; off by default, see docs/research/mass-join.md) every member lists every other alive a
few seconds after the last start; with memberlist's rules some pairs wait for a scaled
push/pull (tens of seconds)."""

from __future__ import annotations

from swimguard.config import Config
from swimguard.sim.cluster import SimCluster
from swimguard.sim.invariants import check_converged, convergence_gaps, missing_alive_pairs
from swimguard.sim.scenarios import join_storm

N = 80
SPREAD = 2.0
BOUND = 8.0  # virtual seconds after the last start
SLOW_SEED = 2  # a storm whose gaps memberlist's rules leave open for ~30 s
SYNC = Config.lan(join_sync_delay=2.0)


def _converged_by(cluster: SimCluster, limit: float) -> float | None:
    """The first quarter second at which no pair is missing, or None by `limit`."""
    cluster.run_until(SPREAD)
    while cluster.now < limit:
        if missing_alive_pairs(cluster) == 0:
            return cluster.now
        cluster.run_until(cluster.now + 0.25)
    return None


def test_mass_join_converges_within_seconds_of_the_last_start(sim_seed: int) -> None:
    cluster = join_storm(N, seed=sim_seed, spread=SPREAD, config=SYNC)
    assert _converged_by(cluster, SPREAD + BOUND) is not None
    check_converged(cluster)


def test_memberlist_rules_leave_the_same_storm_open_longer() -> None:
    ours = join_storm(N, seed=SLOW_SEED, spread=SPREAD, config=SYNC)
    theirs = join_storm(N, seed=SLOW_SEED, spread=SPREAD, config=Config.lan(join_sync_delay=0))
    assert _converged_by(ours, SPREAD + BOUND) is not None
    assert _converged_by(theirs, SPREAD + BOUND) is None
    assert missing_alive_pairs(theirs) > 0


def test_missing_alive_pairs_counts_what_convergence_gaps_lists(sim_seed: int) -> None:
    cluster = join_storm(30, seed=sim_seed, spread=1.0)
    for t in (0.5, 1.0, 1.5, 3.0):
        cluster.run_until(t)
        assert missing_alive_pairs(cluster) == len(convergence_gaps(cluster))
