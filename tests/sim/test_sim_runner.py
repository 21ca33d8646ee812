"""The scenario file format and the `swimguard sim` entry point."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from swimguard.sim.faults import ScenarioError, parse_members, parse_scenario
from swimguard.sim.runner import main

SCENARIO = """
# three faults and a partition
members 8
duration 40
seed 3
config lan suspicion_mult=5 lha_probe=false
link latency=uniform:0.001,0.003 loss=0.01
at 5 slow m2 exp:0.5
at 10 crash m3
at 12 partition m0-m3 / m4-m7
at 14 heal
at 15 fast m2
at 20 leave m7
at 22 block m1 m0
at 25 unblock m1 m0
at 30 meta m1 hello world
"""


def test_parse_scenario() -> None:
    spec = parse_scenario(SCENARIO)
    assert spec.members == 8
    assert spec.seed == 3
    assert spec.config.suspicion_mult == 5
    assert spec.config.lha_probe is False
    assert spec.link.loss == 0.01
    assert [f.verb for f in spec.faults][:3] == ["slow", "crash", "partition"]
    assert parse_members("m1,m3-m4", 8) == ["m1", "m3", "m4"]
    assert parse_members("*", 2) == ["m0", "m1"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("members 4\nat 1 crash m9", "outside"),
        ("at 1 explode m1", "unknown fault"),
        ("config lan nosuch=1", "unknown config"),
        ("config lan probe_interval=-1", "probe_interval"),
        ("at 1 slow m1 weird:1", "bad distribution"),
        ("members 3\nmembers 4", "already set"),
        ("link loss=2", "loss"),
    ],
)
def test_parse_scenario_errors_name_the_line(text: str, fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment) as info:
        parse_scenario(text)
    assert "line " in str(info.value)


def test_run_scenario_reports_each_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.txt"
    path.write_text(SCENARIO)
    assert main(["run", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in report["members"]}
    assert rows["m3"]["state"] == "crashed"
    assert rows["m7"]["state"] == "left"
    assert rows["m0"]["dead"] + rows["m0"].get("left", 0) >= 1
    assert "--seed 3" in report["summary"]["replay"]


def test_run_scenario_bad_file_is_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("at 1 crash\n")
    assert main(["run", str(path)]) == 2
    assert main(["run", str(tmp_path / "missing.txt")]) == 2
    assert main(["lifeguard", "--configs", "nope", "--out", str(tmp_path)]) == 2


def test_lifeguard_command_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "lg"
    argv = ["lifeguard", "--members", "8", "--anomalies", "1", "--duration", "20"]
    argv += ["--seeds", "1", "--configs", "swim,lifeguard", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["config"] for r in rows] == ["swim", "lifeguard"]
    for column in (
        "anomalies",
        "seed",
        "fp_total",
        "fp_healthy",
        "detect_first_s",
        "detect_full_s",
        "msgs_per_member_s",
        "bytes_per_member_s",
    ):
        assert column in rows[0]
    data = json.loads((out / "results.json").read_text())
    assert len(data["rows"]) == 2
    assert "swim" in data["summary"]
    assert (out / "lifeguard.png").stat().st_size > 1000
    assert "| lifeguard |" in (out / "summary.md").read_text()


def test_shipped_example_scenario_parses() -> None:
    import swimguard.sim

    path = Path(swimguard.sim.__file__).parent / "examples" / "slow_and_partition.txt"
    spec = parse_scenario(path.read_text())
    assert spec.members == 20
    assert len(spec.faults) == 7


def test_resume_and_rebuild_from_partial_results(tmp_path: Path) -> None:
    out = tmp_path / "lg"
    base = ["--members", "8", "--anomalies", "1", "--duration", "10", "--seeds", "1", "--quiet"]
    assert main(["lifeguard", *base, "--configs", "swim", "--out", str(out)]) == 0
    first = json.loads((out / "results.json").read_text())["rows"][0]
    # Pretend the run was interrupted after that row, then resume with one more config.
    (out / "results.partial.jsonl").write_text(json.dumps(first) + "\n")
    assert main(["lifeguard-report", "--out", str(out)]) == 0
    assert "| swim |" in (out / "summary.md").read_text()
    argv = ["lifeguard", *base, "--configs", "swim,lifeguard", "--resume", "--out", str(out)]
    assert main(argv) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["config"] for r in rows] == ["swim", "lifeguard"]
    assert rows[0]["wall_s"] == first["wall_s"]  # reused, not rerun


def test_slow_episode_lengths_are_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lg"
    argv = ["lifeguard", "--members", "8", "--anomalies", "2", "--duration", "20", "--seeds", "1"]
    argv += ["--configs", "swim", "--quiet", "--slow", "fixed:3", "--slow-on", "1,2.5"]
    argv += ["--slow-off", "0,4", "--out", str(out)]
    assert main(argv) == 0
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["anomaly"] == "slow=fixed:3 on=U(1,2.5)s off=U(0,4)s"
    for bad in ("3,1", "x", "-1,2", "1,inf"):
        assert main(["lifeguard", "--out", str(out), "--slow-on", bad]) == 2
        assert "MIN" in capsys.readouterr().err
    assert main(["lifeguard", "--out", str(out), "--slow-on", "0,0", "--quiet"]) == 2


def test_lifeguard_without_matplotlib_stops_before_the_work_and_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    out = tmp_path / "lg"
    argv = ["lifeguard", "--members", "8", "--anomalies", "1", "--duration", "20"]
    argv += ["--seeds", "1", "--configs", "swim", "--quiet", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'swimguard[sim]'" in err
    assert "--no-plot" in err
    assert not out.exists()  # nothing was run
    assert main(["lifeguard-report", "--out", str(out)]) == 2
    # --no-plot: the tables, and no plot.
    assert main([*argv, "--no-plot"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "results.csv", "results.json", "results.partial.jsonl", "summary.md"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--members", "2"], "--members 2: must be at least 3"),
        (["--duration", "-5"], "--duration -5: must be a finite"),
        (["--duration", "inf"], "--duration inf: must be a finite"),
        (["--seeds", "0"], "--seeds 0: must be at least 1"),
        (["--jobs", "0"], "--jobs 0: must be at least 1"),
    ],
)
def test_lifeguard_numbers_out_of_range_are_one_usage_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], named: str
) -> None:
    argv = ["lifeguard", "--quiet", "--no-plot", "--out", str(tmp_path / "lg"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"swimguard sim lifeguard: error: {named}" + err.split(named, 1)[1]
    assert err.count("\n") == 1
