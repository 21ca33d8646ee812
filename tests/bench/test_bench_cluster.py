"""Smoke tests of bench.cluster_bench: event parsing, cluster plumbing, report."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from bench.procs import Children

from bench import cluster_bench as cb

SERF_LINES = [
    ("    2026/11/26 15:22:05 [INFO] serf: EventMemberJoin: b 127.0.0.1", ("join", "b")),
    ("    2026/11/26 15:22:14 [INFO] serf: EventMemberFailed: b 127.0.0.1", ("failed", "b")),
    ("    2026/11/26 15:22:14 [INFO] serf: EventMemberLeave: n-1 127.0.0.1", ("leave", "n-1")),
    ("    [INFO] memberlist: Suspect b has failed, no acks received", ("suspect", "b")),
    ("    2026/11/26 15:22:06 [INFO] agent: Received event: member-join", None),
    ("==> Serf agent running!", None),
]


@pytest.mark.parametrize(("line", "expected"), SERF_LINES)
def test_serf_log_parsing(line: str, expected: cb.Parsed | None) -> None:
    assert cb.SerfKind("serf").parse(line) == expected


def test_serf_handler_file_parsing(tmp_path: Path) -> None:
    (tmp_path / "serf-events-a.log").write_text(
        "1700000000.25 member-failed b\t127.0.0.1\t\t\n"
        "1700000001.5 member-join c\t127.0.0.1\t\t\n"
        "garbage line\n"
        "1700000002.0 user ignored\n"
    )
    assert cb.SerfKind("serf").handler_events(tmp_path, "a") == [
        (1700000000.25, "failed", "b"),
        (1700000001.5, "join", "c"),
    ]
    assert cb.SerfKind("serf").handler_events(tmp_path, "missing") == []


def test_serf_argv_has_handler_rpc_and_join(tmp_path: Path) -> None:
    argv = cb.SerfKind("/usr/bin/serf").argv("n1", [7000, 7001], "127.0.0.1:6000", tmp_path)
    assert argv[:2] == ["/usr/bin/serf", "agent"]
    assert argv[argv.index("-bind") + 1] == "127.0.0.1:7000"
    assert argv[argv.index("-rpc-addr") + 1] == "127.0.0.1:7001"
    assert argv[argv.index("-join") + 1] == "127.0.0.1:6000"
    assert "serf-events-n1.log" in argv[argv.index("-event-handler") + 1]
    assert (tmp_path / "serf-handler.sh").exists()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"ts": 1.0, "event": "member-join", "name": "a", "addr": "x", "incarnation": 1}',
         ("join", "a")),
        ('{"ts": 1.0, "event": "member-failed", "name": "b"}', ("failed", "b")),
        ('{"ts": 1.0, "event": "member-suspect", "name": "b"}', ("suspect", "b")),
        ('{"ts": 1.0, "event": "other", "name": "b"}', None),
        ('{"event": 3, "name": "b"}', None),
        ("{not json", None),
        ("INFO something", None),
    ],
)  # fmt: skip
def test_swimguard_json_parsing(line: str, expected: cb.Parsed | None) -> None:
    assert cb.SwimguardKind(sys.executable).parse(line) == expected


class FakeKind(cb.Kind):
    """Agents that print a join event for every member of the cluster, then idle."""

    label = "fake"

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)

    def argv(self, name: str, ports: Sequence[int], seed: str | None, run_dir: Path) -> list[str]:
        code = (
            "import json, sys, time\n"
            "me, others = sys.argv[1], sys.argv[2:]\n"
            "for n in [me] + [o for o in others if o != me]:\n"
            "    print(json.dumps({'event': 'member-join', 'name': n}), flush=True)\n"
            "    time.sleep(0.01)\n"
            "time.sleep(60)\n"
        )
        return [sys.executable, "-c", code, name, *self.names]

    def parse(self, line: str) -> cb.Parsed | None:
        return cb.SwimguardKind("").parse(line)


def test_join_idle_and_kill_plumbing_with_fake_agents(tmp_path: Path) -> None:
    opts = cb.Options(members=3, idle_seconds=0.5, settle_seconds=0.0, join_timeout=20)
    names = [f"fake{i:02d}" for i in range(3)]
    with Children() as kids:
        cluster = cb.Cluster(FakeKind(names), kids, tmp_path, 3)
        try:
            assert cluster.names == names
            join = cb.run_join(cluster, opts)
            assert 0 <= join["converge_from_last_spawn_s"] < 15
            assert join["member_complete_from_last_spawn_s"]["n"] == 3
            idle = cb.run_idle(cluster, opts)
            assert idle["cpu_percent_per_agent"]["n"] == 3
            assert idle["rss_mib_per_agent"]["median"] > 1
            assert idle["membership_events_in_window"] == 0
            victim = cluster.agents["fake01"].proc
            cluster.kill("fake01")
            assert victim.poll() is not None
            # A dead agent that is still expected is reported, not waited on forever.
            with pytest.raises(cb.BenchError, match="exited"):
                cluster.wait(lambda: False, 5, "never")
        finally:
            cluster.close()
    assert all(p.poll() is not None for p in (a.proc for a in cluster.agents.values()))


def _result(cpu: float, rss_mib: float, first: float, all_: float) -> dict[str, object]:
    return {
        "join": {"converge_from_last_spawn_s": 0.5},
        "idle": {
            "cpu_percent_per_agent": {"median": cpu},
            "rss_mib_per_agent": {"median": rss_mib},
            "rss_bytes_median": rss_mib * cb.MIB,
        },
        "detect": {"first_failed_s": {"median": first}, "all_failed_s": {"median": all_}},
    }


def test_compare_targets_and_render() -> None:
    serf = _result(0.3, 14.7, 6.8, 6.9)
    good = _result(0.4, 30.0, 7.0, 7.5)
    bad = _result(0.6, 39.0, 8.0, 7.0)
    t_good = cb.compare(serf, good)["targets"]
    assert all(t_good.values())
    t_bad = cb.compare(serf, bad)["targets"]
    assert t_bad == {
        "cpu_per_agent_le_1.5x_serf": False,
        "rss_le_40MB": False,  # 39 MiB = 40.9 MB
        "detect_first_le_1.1x_serf": False,
        "detect_all_le_1.1x_serf": True,
    }
    assert cb.compare(serf, None)["ratios"]["cpu_per_agent"] is None
    text = cb.render({"serf": serf, "swimguard": good, "comparison": cb.compare(serf, good)})
    assert "1.33x" in text  # CPU ratio 0.4/0.3
    assert "PASS" in text


def test_metrics_cluster_is_reported_beside_the_plain_one() -> None:
    serf = _result(0.3, 14.7, 6.8, 6.9)
    plain = _result(0.1, 30.0, 7.0, 7.5)
    within = _result(0.105, 33.0, 7.0, 7.5)
    over = _result(0.12, 33.0, 7.0, 7.5)
    cmp_ = cb.compare(serf, plain, within)
    assert cmp_["targets"]["metrics_cpu_le_1.1x_plain"] is True
    assert cmp_["ratios"]["metrics_cpu_per_agent"] == pytest.approx(1.05)
    assert cb.compare(serf, plain, over)["targets"]["metrics_cpu_le_1.1x_plain"] is False
    assert "metrics_cpu_le_1.1x_plain" not in cb.compare(serf, plain)["targets"]
    text = cb.render({"serf": serf, "swimguard": plain, "swimguard_metrics": within,
                      "comparison": cmp_})
    head, _, cpu_row = text.splitlines()[:3]
    assert "sg+metrics" in head
    assert cpu_row.split()[-2:] == ["0.105", "1.05x"]
    assert "sg+metrics" not in cb.render({"serf": serf, "swimguard": plain,
                                          "comparison": cb.compare(serf, plain)})


def test_metrics_kind_serves_metrics_on_a_free_loopback_port(tmp_path: Path) -> None:
    args = cb.parse_args(["--metrics", "--swimguard-arg=--log-level=debug"])
    assert args.metrics
    assert not cb.parse_args([]).metrics
    kind = cb.SwimguardKind(sys.executable, [*args.swimguard_arg, *cb.METRICS_ARGS],
                            label="swimguard+metrics")
    argv = kind.argv("n1", [7000], None, tmp_path)
    assert argv[argv.index("--metrics-addr") + 1] == "127.0.0.1:0"
    assert "--log-level=debug" in argv
    assert kind.label == "swimguard+metrics"
    assert cb.SwimguardKind(sys.executable).label == "swimguard"


def test_main_writes_json_when_both_skipped(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    rc = cb.main(["--skip-serf", "--skip-swimguard", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["meta"]["options"]["members"] == 20
    assert set(data["comparison"]["targets"].values()) == {None}


def test_parse_args_defaults_and_validation() -> None:
    args = cb.parse_args([])
    assert (args.members, args.idle_seconds, args.kills) == (20, 60.0, 9)
    assert args.out == "results/cluster_bench.json"
    with pytest.raises(SystemExit):
        cb.parse_args(["--members", "2"])


def test_flags_reach_options() -> None:
    argv = ["--members", "7", "--idle-seconds", "3", "--settle-seconds", "1", "--kills", "2",
            "--seed", "9", "--wait-load", "2.5"]  # fmt: skip
    opts = cb.options_from_args(cb.parse_args(argv))
    assert opts == cb.Options(members=7, idle_seconds=3.0, settle_seconds=1.0, kills=2, seed=9,
                              wait_load=2.5)  # fmt: skip
    assert cb.wait_for_load(0.0) < 0.1  # 0 = do not wait
