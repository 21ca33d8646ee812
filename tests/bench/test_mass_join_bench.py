"""bench.mass_join on a small storm: both rule sets converge and the figures are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import mass_join


def test_small_storm_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--members", "20", "--spread", "1", "--window", "5", "--out", str(tmp_path)]
    assert mass_join.main(argv) == 0
    rows = json.loads((tmp_path / "mass_join_sim_20.json").read_text())
    assert [r["rules"] for r in rows] == ["memberlist", "swimguard"]
    for row in rows:
        assert row["converged"]
        assert row["converge_after_last_start_s"] >= 0
        assert row["bytes_per_member_window"] > 0
    assert "swimguard/memberlist" in capsys.readouterr().out
