"""bench.sim_scale: a tiny run fills every field; the extrapolation follows its formula."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import sim_scale


def test_tiny_run_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_scale.main(["--sizes", "12", "--virtual", "2", "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "sim_scale.json").read_text())
    assert row["members"] == 12
    assert row["bootstrap_converged"] is True
    assert row["bootstrap_datagrams"] > 0
    assert row["alive_update"]["reached"] == 1.0
    assert row["dead_update"]["reached"] == 1.0
    assert "| 12 |" in (tmp_path / "sim_scale.md").read_text()
    capsys.readouterr()


def test_extrapolation_formula() -> None:
    rows: list[dict[str, object]] = [
        {
            "members": 500,
            "bootstrap_cpu_s": 10.0,
            "bootstrap_cpu_us_per_datagram": 100.0,
            "rss_bytes_per_record": 300,
        },
        {
            "members": 1000,
            "bootstrap_cpu_s": 40.0,
            "bootstrap_cpu_us_per_datagram": 110.0,
            "rss_bytes_per_record": 250,
        },
    ]
    est = sim_scale.extrapolate(rows, 4000)
    # (4000/1000)^2 = 16; retransmit limit 4*4 -> 4*4 (log10(4001) < 4); two doublings of 1.1.
    assert est["per_datagram_growth"] == pytest.approx(1.21)
    assert est["bootstrap_cpu_s"] == round(40.0 * 16 * 1.0 * 1.21)
    assert est["member_table_gb"] == pytest.approx(250 * 16e6 / 1e9, abs=0.05)


def test_combine_merges_runs_and_extrapolates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in (8, 12):
        args = ["--sizes", str(n), "--virtual", "1", "--out", str(tmp_path / str(n))]
        assert sim_scale.main(args) == 0
    out = tmp_path / "all"
    args = ["--combine", str(tmp_path / "12"), str(tmp_path / "8"), "--extrapolate", "100"]
    assert sim_scale.main([*args, "--out", str(out)]) == 0
    rows = json.loads((out / "sim_scale.json").read_text())
    assert [r.get("members") for r in rows[:2]] == [8, 12]
    assert rows[2]["extrapolation"]["from_members"] == [8, 12]
    capsys.readouterr()


def test_warm_run_skips_the_join_and_is_left_out_of_the_extrapolation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--sizes", "40", "--virtual", "2", "--warm", "--out", str(tmp_path / "w")]
    assert sim_scale.main(args) == 0
    (row,) = json.loads((tmp_path / "w" / "sim_scale.json").read_text())
    assert row["start"] == "warm"
    assert row["bootstrap_datagrams"] == 0
    assert row["alive_update"]["reached"] == 1.0
    assert row["dead_update"]["reached"] == 1.0
    assert "| 40 | warm: " in (tmp_path / "w" / "sim_scale.md").read_text()
    with pytest.raises(SystemExit, match="not --warm"):
        sim_scale.main(["--combine", str(tmp_path / "w"), "--extrapolate", "100"])
    capsys.readouterr()
