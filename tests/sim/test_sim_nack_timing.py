"""Nacks must reach a healthy prober while it still counts them (LAN timing).

The prober asks its relays one probe timeout (0.5 s) into its probe and counts nacks until
the probe interval (1 s) ends. A relay that nacked after its own whole probe timeout sent it
at 0.5 + 0.5 s plus the network's delays: just after the prober stopped counting. Every
healthy member probing a really crashed one then scored three missed nacks (+3: probes and
health-scaled suspicions 4x longer) for a failure that was not its own.
"""

from __future__ import annotations

from swimguard.protocol.history import HealthCause, ProbeKind
from swimguard.sim.experiment import experiment_config
from swimguard.sim.scenarios import start_cluster


def test_a_real_crash_costs_healthy_probers_no_health(sim_seed: int) -> None:
    c = start_cluster(8, seed=sim_seed, config=experiment_config("lifeguard"), settle=20.0)
    c.crash("m7")
    c.run_for(8.0)
    probed = 0
    for m in c.live():
        node = m.node
        me = node.explain(m.name, now=c.now)
        assert me is not None
        assert [ch for ch in me.health_changes if ch.cause is HealthCause.MISSED_NACKS] == [], (
            m.name
        )
        assert node.health_score == 0
        assert node.drops.get("late_nack", 0) == 0
        about = node.explain("m7", now=c.now)
        assert about is not None
        failed = [p for p in about.probes if p.kind is ProbeKind.INDIRECT and not p.ok]
        for probe in failed:
            assert probe.nacks == probe.expected_nacks == 3
        probed += len(failed)
    assert probed >= 5  # most members probed m7 before it was declared dead
