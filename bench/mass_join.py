"""Mass-join benchmark: `python -m bench.mass_join --members 500 [--rules memberlist|swimguard]`.

Issue 17, target 1. N members start within `--spread` virtual seconds (default 10), in
order, each joining ONE RANDOM EARLIER member (not one shared seed), on the simulator with
the real core and the default (LAN) configuration. Reported per rule set:

- convergence: the first virtual time at which every member lists every other one alive,
  counted from the first start (the issue's target: <= 15 s) and from the last start;
- what is missing when: the number of missing (member, member) pairs at sampled times, so a
  slow tail (members waiting for a push/pull) is visible;
- bytes and messages sent per member (datagrams + stream writes) during the first
  `--window` virtual seconds (the join storm, the same span for both rule sets) and until
  convergence;
- the CPU seconds the simulation took (noisy: the machine is shared).

`--rules memberlist` runs `Config(join_sync_delay=0)`, memberlist's own rules;
`--rules swimguard` `Config(join_sync_delay=2)` (the extension is off by default: see
docs/research/mass-join.md). `--rules both` runs the two side
by side in one process. `--real` runs real agents instead (see `bench.mass_join_real`).
Results go to stdout and, with `--out DIR`, to DIR/mass_join_sim.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from swimguard.config import Config
from swimguard.sim.cluster import SimCluster
from swimguard.sim.invariants import missing_alive_pairs
from swimguard.sim.network import LinkModel
from swimguard.sim.scenarios import join_storm

RULES = ("memberlist", "swimguard")


def rules_config(rules: str) -> Config:
    """The configuration a rule set names: the default, or the extension switched off."""
    if rules == "swimguard":
        return Config.lan(join_sync_delay=2.0)
    if rules == "memberlist":
        return Config.lan(join_sync_delay=0.0)
    raise ValueError(f"unknown rules {rules!r}; choose from {', '.join(RULES)}")


def _sent(cluster: SimCluster) -> tuple[int, int]:
    return (
        sum(m.bytes_sent for m in cluster.members),
        sum(m.msgs_sent for m in cluster.members),
    )


def measure(
    n: int,
    *,
    rules: str,
    seed: int,
    spread: float,
    window: float,
    cap: float,
    sample: float,
    loss: float = 0.0,
) -> dict[str, object]:
    """Run one storm to convergence (or `cap` virtual s); returns the figures."""
    config = rules_config(rules)
    cpu = time.process_time()
    link = LinkModel(loss=loss) if loss else None
    cluster = join_storm(n, seed=seed, spread=spread, config=config, link=link)
    timeline: list[tuple[float, int]] = []
    converged_at: float | None = None
    at_window: tuple[int, int] | None = None
    while cluster.now < cap:
        cluster.run_until(min(cap, cluster.now + sample))
        if at_window is None and cluster.now >= window:
            at_window = _sent(cluster)
        if cluster.now < spread:
            continue
        gaps = missing_alive_pairs(cluster)
        timeline.append((round(cluster.now, 3), gaps))
        if gaps == 0:
            converged_at = cluster.now
            break
    total = _sent(cluster)
    if at_window is None:  # converged before the window closed: run the window out
        cluster.run_until(window)
        at_window = _sent(cluster)
    return {
        "members": n,
        "rules": rules,
        "seed": seed,
        "spread_s": spread,
        "loss": loss,
        "converged": converged_at is not None,
        "converge_from_first_start_s": None if converged_at is None else round(converged_at, 2),
        "converge_after_last_start_s": (
            None if converged_at is None else round(converged_at - spread, 2)
        ),
        "missing_pairs_after_storm": timeline[0][1] if timeline else None,
        "timeline": _thin(timeline),
        "window_s": window,
        "bytes_per_member_window": round(at_window[0] / n),
        "msgs_per_member_window": round(at_window[1] / n, 1),
        "bytes_per_member_to_convergence": round(total[0] / n),
        "msgs_per_member_to_convergence": round(total[1] / n, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
    }


def _thin(timeline: list[tuple[float, int]], keep: int = 40) -> list[tuple[float, int]]:
    """At most `keep` samples, always the first and the last."""
    if len(timeline) <= keep:
        return timeline
    step = len(timeline) / (keep - 1)
    picked = [timeline[int(i * step)] for i in range(keep - 1)]
    return [*picked, timeline[-1]]


def _line(row: dict[str, object]) -> str:
    conv = row["converge_from_first_start_s"]
    return (
        f"N={row['members']} rules={row['rules']} loss={row['loss']}: "
        + (
            f"converged {conv} virtual s after the first start "
            f"({row['converge_after_last_start_s']} s after the last)"
            if row["converged"]
            else "NOT converged"
        )
        + f"; missing pairs when the last member started: {row['missing_pairs_after_storm']}; "
        f"per member in the first {row['window_s']:g} s: {row['bytes_per_member_window']} bytes, "
        f"{row['msgs_per_member_window']} msgs; to convergence: "
        f"{row['bytes_per_member_to_convergence']} bytes, "
        f"{row['msgs_per_member_to_convergence']} msgs; CPU {row['cpu_s']} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 when a swimguard run did not converge within the cap."""
    parser = argparse.ArgumentParser(prog="python -m bench.mass_join", description=__doc__)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--rules", choices=(*RULES, "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spread", type=float, default=10.0, help="start window (virtual s)")
    parser.add_argument("--window", type=float, default=60.0, help="byte-count window (s)")
    parser.add_argument("--cap", type=float, default=900.0, help="give up after (virtual s)")
    parser.add_argument("--sample", type=float, default=0.5, help="convergence check period")
    parser.add_argument("--loss", type=float, default=0.0, help="datagram loss rate (0..1)")
    parser.add_argument("--real", action="store_true", help="real agents: bench.mass_join_real")
    parser.add_argument("--out", type=Path, default=None)
    args, rest = parser.parse_known_args(argv if argv is not None else [])
    if args.real:
        from bench import mass_join_real

        out = [f"--out={args.out}"] if args.out is not None else []
        common = [f"--members={args.members}", f"--seed={args.seed}", *out]
        return mass_join_real.main([*common, *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.members < 2:
        parser.error("--members must be at least 2")
    rules = RULES if args.rules == "both" else (args.rules,)
    rows = []
    for r in rules:
        print(f"mass_join: N={args.members} rules={r} ...", file=sys.stderr, flush=True)
        row = measure(
            args.members,
            rules=r,
            seed=args.seed,
            spread=args.spread,
            window=args.window,
            cap=args.cap,
            sample=args.sample,
            loss=args.loss,
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    for row in rows:
        print(_line(row))
    if len(rows) == 2 and rows[0]["bytes_per_member_window"]:
        ratio = int(str(rows[1]["bytes_per_member_window"])) / int(
            str(rows[0]["bytes_per_member_window"])
        )
        print(f"bytes per member over the storm window, swimguard/memberlist: {ratio:.3f}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        suffix = f"_loss{args.loss:g}" if args.loss else ""
        path = args.out / f"mass_join_sim_{args.members}{suffix}.json"
        path.write_text(json.dumps(rows, indent=1) + "\n")
    ok = all(r["converged"] for r in rows if r["rules"] == "swimguard")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
