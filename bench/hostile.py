"""Hostile-input suite against live agents (issue 10): `python -m bench.hostile`.

For each scenario (one attack on one fresh cluster, plaintext or encrypted) it starts three
`python -m swimguard agent` processes on 127.0.0.1 (member 0 is the attacked agent and the
seed), runs the attack (bounded in count and time, loopback only), lets the cluster settle,
starts a fourth agent with `--join` through the attacked one, then stops every agent with
SIGTERM so each prints its final drop counters. Each scenario passes when:

- no_crash: no agent process exited before it was asked to;
- no_false_failure: no agent emitted `member-failed` about a healthy member (on a plaintext
  cluster the spoof attack forges `dead` messages that memberlist's protocol accepts from
  anyone, so there the check is no_lasting_false_failure: every healthy member is alive in
  every healthy view again after the settle period);
- rss_recovered: the RSS of each attacked agent after the settle period is under 2x its start;
- join_after: the fourth agent joined through the attacked agent;
- drops_accounted: the attacked agents' drop counters plus the kernel's UDP drops cover at
  least the input known to be invalid (e.g. every datagram the project's own decoder
  rejects, every spoofed datagram on an encrypted cluster, every connection the agent cut);
- no_internal_error: no `protocol core raised on input` (drop reason `internal_error`);
- plus finding-specific checks (stream deadline within tcp_timeout, joins answered during a
  slowloris).

Figures per scenario: RSS start/peak/after, UDP pings from the bench to the attacked agent
(lost, max RTT = how long its loop could not answer), suspicions of the attacked agent by its
peers and by it of its peers, drops by reason, join time. `--attack NAME` runs one attack
(repeatable); `--size full|ci|smoke` picks sizes (full = the issue's), flags override them.
Exit status 0 only when every scenario passes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench import hostile_attacks as attacks
from bench.hostile_attacks import ATTACKS, AttackConfig, AttackResult, Context
from bench.hostile_live import BenchError, LiveCluster, Watch, kernel_udp_drops
from bench.hostile_packets import PacketFactory, Target, load_seeds
from bench.procs import Children
from swimguard.config import Config

RSS_FACTOR = 2.0
SIZES: dict[str, AttackConfig] = {
    # The sizes: a million datagrams, 31-bomb datagrams at 30/s, 32 x 20 MiB bodies.
    "full": AttackConfig(),
    # The slow test: every attack, fewer packets, shorter holds (the attacker gives up on a
    # stream a few seconds after tcp_timeout: past it the deadline check fails anyway).
    "ci": AttackConfig(
        udp_packets=120_000,
        bomb_packets=90,
        lie_seconds=15.0,
        big_connections=8,
        slowloris_seconds=8.0,
        endless_connections=4,
        endless_seconds=14.0,
        never_read_connections=16,
        spoof_rounds=10,
        wrap_readd_seconds=120.0,
    ),
    # The fast test: a few thousand datagrams (and small versions of the rest).
    "smoke": AttackConfig(
        udp_packets=3_000,
        udp_rate=3_000.0,
        bomb_packets=30,
        lie_seconds=14.0,
        big_connections=2,
        slowloris_seconds=5.0,
        endless_connections=4,
        endless_seconds=14.0,
        never_read_connections=8,
        spoof_rounds=3,
        wrap_readd_seconds=120.0,
    ),
}
ENCRYPTED_SHARE = 0.2  # of --udp-packets sent to the encrypted cluster (rest: plaintext)
DEFAULT_VARIANTS = {"udp-fuzz": ("plain", "encrypted"), "spoof": ("plain", "encrypted")}


@dataclass
class Options:
    """Run parameters (see the flags)."""

    attacks: list[str]
    variants: list[str] | None  # None: each attack's default variants
    cfg: AttackConfig
    profile: str = "lan"
    settle: float = 5.0
    baseline: float = 1.0
    seed: int = 1
    python: str = sys.executable
    keep_logs: str = ""


@dataclass
class Scenario:
    """One attack on one fresh cluster and what came of it."""

    attack: str
    variant: str
    packets: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    criteria: dict[str, bool] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when the scenario ran and every criterion held."""
        return self.error is None and bool(self.criteria) and all(self.criteria.values())


def plan(opts: Options) -> list[tuple[str, str, int]]:
    """(attack, variant, udp packets) of every scenario, in run order."""
    out = []
    for attack in opts.attacks:
        variants = opts.variants or list(DEFAULT_VARIANTS.get(attack, ("plain",)))
        for variant in variants:
            packets = 0
            if attack == "udp-fuzz":
                share = (
                    1.0
                    if len(variants) == 1
                    else (ENCRYPTED_SHARE if variant == "encrypted" else 1.0 - ENCRYPTED_SHARE)
                )
                packets = round(opts.cfg.udp_packets * share)
            out.append((attack, variant, packets))
    return out


def _run_attack(name: str, ctx: Context, packets: int) -> AttackResult:
    if name == "udp-fuzz":
        return attacks.udp_fuzz(ctx, packets)
    fn = {
        "lzw-bomb": attacks.lzw_bomb,
        "pushpull-lie": attacks.pushpull_lie,
        "big-bodies": attacks.big_bodies,
        "slowloris": attacks.slowloris,
        "endless-stream": attacks.endless_stream,
        "never-read": attacks.never_read,
        "spoof": attacks.spoof,
        "incarnation-wrap": attacks.incarnation_wrap,
        "bad-name": attacks.bad_name,
    }[name]
    return fn(ctx)


def run_scenario(attack: str, variant: str, packets: int, opts: Options) -> Scenario:
    """Start a cluster, attack it, check recovery and a join, stop it; never raises."""
    sc = Scenario(attack, variant, packets)
    t_start = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix=f"hostile-{attack}-{variant}-"))
    rng = random.Random(f"{opts.seed}/{attack}/{variant}")
    key_b64 = base64.b64encode(rng.randbytes(32)).decode() if variant == "encrypted" else None
    profile = {"lan": Config.lan, "wan": Config.wan, "local": Config.local}[opts.profile]()
    cfg = replace(opts.cfg, tcp_timeout=profile.tcp_timeout)
    try:
        with Children() as kids:
            live = LiveCluster(
                kids, run_dir, key_b64=key_b64, profile=opts.profile, python=opts.python
            )
            try:
                _scenario_body(sc, live, cfg, rng, key_b64, opts, profile)
            except BenchError as exc:
                sc.error = str(exc)
            finally:
                if live.stopping_at is None:
                    live.stop()
    except Exception as exc:  # a bench bug must not hide the other scenarios' figures
        sc.error = f"{type(exc).__name__}: {exc}"
    finally:
        if opts.keep_logs:
            dest = Path(opts.keep_logs) / f"{attack}-{variant}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(run_dir, dest)
        shutil.rmtree(run_dir, ignore_errors=True)
    sc.seconds = round(time.monotonic() - t_start, 1)
    return sc


def _scenario_body(
    sc: Scenario,
    live: LiveCluster,
    cfg: AttackConfig,
    rng: random.Random,
    key_b64: str | None,
    opts: Options,
    profile: Config,
) -> None:
    live.start()
    names = live.names[: live.members]
    time.sleep(opts.baseline)
    target = Target(
        live.attacked, live.addr(live.attacked), tuple((n, live.addr(n)) for n in names)
    )
    factory = PacketFactory(load_seeds(), target, random.Random(rng.random()))
    ctx = Context(live, factory, cfg, rng, key_b64)
    attacked = list(names) if sc.attack == "spoof" else [live.attacked]
    kernel0 = {n: kernel_udp_drops(live.addr(n)[1]) for n in attacked}
    t_attack = time.time()
    with Watch(live, probe_timeout=profile.probe_timeout) as watch:
        rss_start = watch.rss_now()
        res = _run_attack(sc.attack, ctx, sc.packets)
        t_end = time.time()
        # Settle: a measurement window for memory and views to recover, not a wait for
        # an event (there is none for "memory was given back").
        time.sleep(opts.settle)
        rss_after = watch.rss_now()
        crashed = {n: c for n, c in live.crashed().items() if n in names}
        views_whole = live.wait_until(lambda: live.views_whole(names), 0.0)
        join_timeout = 2 * profile.tcp_timeout + 10.0  # the CLI gives up at 2x + 1 s
        join = live.join_through_attacked(join_timeout)
    kernel = sum(kernel_udp_drops(live.addr(n)[1]) - kernel0[n] for n in attacked)
    t_stop = time.time()
    crashed.update({n: c for n, c in live.crashed().items() if n in names})
    live.stop()
    healthy = set(live.names)  # the three members and the joiner are all healthy
    events = [e for e in live.events(t_attack) if e[1] <= t_stop]
    false_failed = [e for e in events if e[2] == "failed" and e[3] in healthy]
    peers_suspect = [
        e for e in events if e[2] == "suspect" and e[3] == live.attacked and e[0] != live.attacked
    ]
    own_suspect = [
        e for e in events if e[2] == "suspect" and e[0] == live.attacked and e[3] in healthy
    ]
    reports = {n: live.stderr(n) for n in live.running()}
    drops: dict[str, int] = {}
    for n in attacked:
        for reason, count in reports[n].drops.items():
            drops[reason] = drops.get(reason, 0) + count
    drops_total = sum(v for k, v in drops.items() if k != "events_lost")
    internal = sum(r.drops.get("internal_error", 0) for r in reports.values())
    internal_logged = sum(r.internal_errors_logged for r in reports.values())
    exceptions: dict[str, int] = {}
    for r in reports.values():
        for k, v in r.exceptions.items():
            exceptions[k] = exceptions.get(k, 0) + v
    rss = watch.rss_figures(rss_start)
    for n in rss:
        rss[n]["after_mib"] = round(rss_after.get(n, 0) / 2**20, 1)
    sc.result = res.as_dict()
    sc.figures = {
        "attack_seconds": round(t_end - t_attack, 1),
        "rss": rss,
        "pings_to_attacked": watch.pings.summary(),
        "tcp_connections_held_max": watch.conns_max,
        "suspicions_of_attacked_by_peers": len(peers_suspect),
        "suspicions_by_attacked_of_healthy": len(own_suspect),
        "false_failed_events": [
            f"{o} saw {s} failed at +{ts - t_attack:.1f}s" for o, ts, _, s in false_failed
        ][:20],
        "false_failed_count": len(false_failed),
        "views_whole_after_settle": views_whole,
        "join_after": join,
        "drops_attacked": dict(sorted(drops.items())),
        "drops_attacked_total": drops_total,
        "kernel_udp_drops": kernel,
        "final_drops_line_found": all(reports[n].final_drops is not None for n in attacked),
        "internal_errors": internal,
        "internal_errors_logged": internal_logged,
        "exceptions_logged": dict(sorted(exceptions.items(), key=lambda kv: -kv[1])[:8]),
        "exit_codes": live.exit_codes,
        "crashed": crashed,
    }
    # Forged gossip on a plaintext cluster: memberlist accepts suspect/dead from anyone, and
    # nothing outbids an accusation at incarnation 0xFFFFFFFF (uint32 on every peer), so there
    # the criterion is that every view is whole again (the member is re-added), not that no
    # failure was ever declared.
    plaintext_spoof = sc.variant == "plain" and sc.attack in ("spoof", "incarnation-wrap")
    # A member that dies at its graceful exit (SIGTERM) crashed too; the joiner's status is
    # the join criterion's business (the CLI exits 1 when its join fails).
    unclean = {n: c for n, c in live.exit_codes.items() if n in names and c != 0}
    sc.figures["unclean_exit"] = unclean
    sc.criteria = {
        "no_crash": not crashed and not unclean,
        ("no_lasting_false_failure" if plaintext_spoof else "no_false_failure"): (
            views_whole if plaintext_spoof else not false_failed
        ),
        "rss_recovered": all(
            rss_after.get(n, 0) < RSS_FACTOR * rss_start.get(n, 1) for n in attacked
        ),
        "join_after": bool(join["ok"]),
        "drops_accounted": drops_total + kernel >= res.expected_min_drops
        and (res.expected_min_drops == 0 or bool(drops)),
        "no_internal_error": internal == 0 and internal_logged == 0,
        **res.extra_checks,
    }


# --------------------------------------------------------------------------- report


def _mib(x: Any) -> str:
    return "-" if x is None else f"{x:.0f}"


def render(scenarios: Sequence[Scenario]) -> str:
    """Compact table: one row per scenario, then the failed criteria."""
    head = (
        f"{'attack':<16} {'var':<4} {'sent':>9} {'drops':>9} {'kdrop':>6} "
        f"{'RSS MiB st/pk/aft':>17} {'ping miss':>9} {'maxRTT ms':>9} {'mute s':>6} {'susp':>4} "
        f"{'ffail':>5} {'ierr':>5} {'join':>6} {'s':>5}  result"
    )
    lines = [head, "-" * len(head)]
    for sc in scenarios:
        f = sc.figures
        sent = sum(
            v
            for k, v in sc.result.get("sent", {}).items()
            if k in ("datagrams", "connections", "bomb_datagrams")
        )
        r = f.get("rss", {}).get
        attacked = next(iter(f.get("rss", {})), None)
        rr = r(attacked, {}) if attacked else {}
        p = f.get("pings_to_attacked", {})
        join = f.get("join_after", {})
        status = "PASS" if sc.passed else "FAIL"
        lines.append(
            f"{sc.attack:<16} {sc.variant[:4]:<4} {sent:>9} "
            f"{f.get('drops_attacked_total', '-'):>9} {f.get('kernel_udp_drops', '-'):>6} "
            f"{_mib(rr.get('start_mib')):>5}/{_mib(rr.get('peak_mib')):>5}/"
            f"{_mib(rr.get('after_mib')):>5} "
            f"{str(p.get('missed', '-')) + '/' + str(p.get('sent', '-')):>9} "
            f"{p.get('rtt_ms_max') or '-':>9} {p.get('longest_silence_s', '-'):>6} "
            f"{f.get('suspicions_of_attacked_by_peers', '-'):>4} "
            f"{f.get('false_failed_count', '-'):>5} {f.get('internal_errors', '-'):>5} "
            f"{('ok' if join.get('ok') else 'FAIL') if join else '-':>6} {sc.seconds:>5.0f}  "
            f"{status}"
        )
    for sc in scenarios:
        bad = [k for k, v in sc.criteria.items() if not v]
        if sc.error:
            lines.append(f"  {sc.attack}/{sc.variant}: ERROR {sc.error}")
        elif bad:
            lines.append(f"  {sc.attack}/{sc.variant}: failed {', '.join(bad)}")
        exc = sc.figures.get("exceptions_logged")
        if exc:
            top = next(iter(exc.items()))
            lines.append(f"    most logged exception: {top[1]}x {top[0]}")
    total_udp = sum(
        sc.result.get("sent", {}).get("datagrams", 0)
        + sc.result.get("sent", {}).get("bomb_datagrams", 0)
        for sc in scenarios
    )
    total_conn = sum(sc.result.get("sent", {}).get("connections", 0) for sc in scenarios)
    ok = sum(1 for sc in scenarios if sc.passed)
    lines.append(
        f"totals: {total_udp} hostile datagrams, {total_conn} hostile connections, "
        f"{ok}/{len(scenarios)} scenarios passed"
    )
    return "\n".join(lines)


def _git_rev() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip()
    return ""


def run(opts: Options, log: Any = None) -> list[Scenario]:
    """Run every planned scenario in order; `log(msg)` reports progress."""
    out = []
    for attack, variant, packets in plan(opts):
        if log:
            log(f"{attack}/{variant} starting")
        sc = run_scenario(attack, variant, packets, opts)
        if log:
            bad = [k for k, v in sc.criteria.items() if not v]
            log(
                f"{attack}/{variant}: {'PASS' if sc.passed else 'FAIL'} in {sc.seconds:.0f} s"
                + (f" ({', '.join(bad)})" if bad else "")
                + (f" ERROR {sc.error}" if sc.error else "")
            )
        out.append(sc)
    return out


def _log(msg: str) -> None:
    print(f"[hostile {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> tuple[Options, str]:
    """Options and the output path from the command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.hostile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--attack",
        action="append",
        choices=sorted(ATTACKS),
        default=[],
        help="run only this attack (repeatable; default: all)",
    )
    p.add_argument(
        "--variant",
        action="append",
        choices=["plain", "encrypted"],
        default=[],
        help="cluster variant(s) (default: both for udp-fuzz and spoof, plain for the rest)",
    )
    p.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="full",
        help="preset sizes: full (the issue's), ci (slow test), smoke (fast test)",
    )
    for f in fields(AttackConfig):
        if f.name == "tcp_timeout":
            continue
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(f.default),
            default=None,
            help=f"override the preset (full: {f.default})",
        )
    p.add_argument("--profile", choices=["lan", "wan", "local"], default="lan")
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds after the attack before RSS and views are checked",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--python", default=sys.executable, help="interpreter of the agents")
    p.add_argument("--keep-logs", default="", help="copy each scenario's agent logs here")
    p.add_argument(
        "--out",
        default=None,
        help="JSON result path (default results/hostile/<attacks>.json; '' = none)",
    )
    args = p.parse_args(argv)
    cfg = SIZES[args.size]
    overrides = {
        f.name: getattr(args, f.name)
        for f in fields(AttackConfig)
        if f.name != "tcp_timeout" and getattr(args, f.name) is not None
    }
    cfg = replace(cfg, **overrides)
    chosen = args.attack or list(ATTACKS)
    opts = Options(
        attacks=chosen,
        variants=args.variant or None,
        cfg=cfg,
        profile=args.profile,
        settle=args.settle,
        seed=args.seed,
        python=args.python,
        keep_logs=args.keep_logs,
    )
    if args.out is None:
        stem = "hostile" if not args.attack else "hostile-" + "-".join(args.attack)
        out = f"results/hostile/{stem}-{args.size}.json"
    else:
        out = args.out
    return opts, out


def write_results(
    path: str, opts: Options, scenarios: Sequence[Scenario], argv: Sequence[str], started: float
) -> None:
    """The JSON result file: meta, options and every scenario."""
    doc = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started, 1),
            "command": " ".join(
                shlex.quote(a) for a in [sys.executable, "-m", "bench.hostile", *argv]
            ),
            "git_rev": _git_rev(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "loadavg_end": list(os.getloadavg()),
        },
        "options": {**asdict(opts), "cfg": asdict(opts.cfg)},
        "passed": all(sc.passed for sc in scenarios),
        "scenarios": [asdict(sc) | {"passed": sc.passed} for sc in scenarios],
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; 0 when every scenario passed."""
    args = list(sys.argv[1:] if argv is None else argv)
    opts, out = parse_args(args)
    started = time.time()
    scenarios = run(opts, _log)
    print(render(scenarios), flush=True)
    if out:
        write_results(out, opts, scenarios, args, started)
        _log(f"results written to {out} ({time.time() - started:.0f} s)")
    return 0 if all(sc.passed for sc in scenarios) else 1


if __name__ == "__main__":
    sys.exit(main())
