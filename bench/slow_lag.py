"""How late a simulated slow member really reads its input: `python -m bench.slow_lag exp:2 ...`.

A slow member's datagrams each wait a delay drawn from the anomaly distribution, but through
one FIFO queue, so a datagram also waits for every earlier one: the effective lag is a running
maximum and far exceeds the distribution's mean. This measures it in a 100-member LAN cluster
(member m5 slow for 60 virtual s after a 30 s settle) and prints quantiles per model.
Not part of `make bench` (it documents the anomaly model used in results/lifeguard/).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

from swimguard.config import Config
from swimguard.protocol.outgoing import Address
from swimguard.sim.cluster import SimCluster, SimMember
from swimguard.sim.scenarios import start_cluster
from swimguard.sim.slow import parse_slow


class _LagProbe(SimCluster):
    """Records, for each datagram reaching a slow member, how long it waits to be read."""

    lags: list[float]

    def _arrive_datagram(self, m: SimMember, data: bytes, sender: Address) -> None:
        super()._arrive_datagram(m, data, sender)
        if m.up and m.slow is not None and m.slow.fifo:
            self.lags.append(m.fifo_time - self.clock.now)  # when the queue reaches it


def measure(model: str, seed: int = 1) -> list[float]:
    """Input lags (seconds) of one slow member under `model` (e.g. ``exp:2``)."""
    cluster = start_cluster(100, seed=seed, config=Config.lan(), join_spread=5.0)
    cluster.__class__ = _LagProbe  # same state, one instrumented method
    assert isinstance(cluster, _LagProbe)
    cluster.lags = []
    cluster.run_until(cluster.now + 30)
    cluster.set_slow("m5", parse_slow(model))
    cluster.run_until(cluster.now + 60)
    return cluster.lags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_lag", description=__doc__)
    parser.add_argument("models", nargs="*", default=["exp:2", "exp:1"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for model in args.models:
        lags = sorted(measure(model, args.seed))
        if not lags:
            print(f"{model}: not a FIFO model (each datagram waits only its own draw)")
            continue

        def q(p: float, lags: list[float] = lags) -> float:
            return lags[int(p * (len(lags) - 1))]

        print(
            f"{model}: {len(lags)} datagrams, input lag median {q(0.5):.2f} s, p90 {q(0.9):.2f} s, "
            f"p99 {q(0.99):.2f} s, max {lags[-1]:.2f} s, mean {statistics.fmean(lags):.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
