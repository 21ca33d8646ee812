"""`swimguard sim map`: the grid, the per-cell ratios, the files, and a tiny real map (slow)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest

from swimguard.sim.anomaly_map import (
    METRICS,
    DelayKind,
    Episodes,
    MapCell,
    MapGrid,
    MapRow,
    Target,
    meets,
    ratio,
    summarize,
    worst_cells,
)
from swimguard.sim.experiment import RunResult
from swimguard.sim.map_output import map_markdown, write_map
from swimguard.sim.runner import main


def test_full_grid_skips_fixed_delays_without_fifo() -> None:
    grid = MapGrid()
    cells = grid.cells()
    # 6 means x 4 episode lengths x 2 timer modes x 3 counts, for exp with and without FIFO
    # and for fixed with FIFO only (a fixed delay never reorders).
    assert len(cells) == 6 * 4 * 2 * 3 * 3
    assert not [c for c in cells if c.dist is DelayKind.FIXED and not c.fifo]
    assert len({c.key for c in cells}) == len(cells)
    assert len(list(grid.specs())) == len(cells) * 3
    only_nofifo = MapGrid(dists=(DelayKind.FIXED,), fifo=(False,))
    assert only_nofifo.cells()  # asked for explicitly: kept


def test_cell_texts_and_models() -> None:
    cell = MapCell(DelayKind.EXP, 0.25, Episodes.SHORT, False, False, 4)
    assert cell.key == "exp:0.25,notimers,nofifo/1-4/a4"
    model = cell.model()
    assert model.spec().timers is False
    assert model.spec().fifo is False
    assert (model.on, model.off) == ((1.0, 4.0), (10.0, 30.0))
    forever = MapCell(DelayKind.FIXED, 8.0, Episodes.PERMANENT, True, True, 32).model()
    assert forever.off == (0.0, 0.0)
    assert forever.on[0] > 1e6
    assert MapCell.from_fields(cell.fields()) == cell
    with pytest.raises(ValueError):
        MapCell.from_fields({**cell.fields(), "timers": "sometimes"})


def result(config: str, seed: int = 1, **values: float) -> RunResult:
    base: dict[str, float] = dict(
        fp_total=0, fp_healthy=0, fp_at_healthy=0, fp_observed=0, false_suspicions=0,
        crashes=1, detect_first_s=2.0, detect_full_s=10.0, msgs_per_member_s=4.0,
        bytes_per_member_s=100.0, settle_s=1.0, wall_s=1.0, fp_deaths=0, fp_responsive=0,
        fp_unresponsive=0,
    )
    base.update(values)
    return RunResult(config=config, anomalies=4, seed=seed, members=100, duration_s=150.0,
                     **base)  # type: ignore[arg-type]


A = MapCell(DelayKind.EXP, 2.0, Episodes.LONG, True, True, 4)
B = MapCell(DelayKind.FIXED, 2.0, Episodes.LONG, True, True, 4)


def synthetic() -> list[MapRow]:
    return [
        MapRow(A, result("swim", fp_total=300, fp_healthy=100, fp_responsive=50,
                         fp_unresponsive=150)),
        MapRow(A, result("lifeguard", fp_total=160, fp_healthy=1, fp_responsive=9,
                         fp_unresponsive=150, detect_full_s=12.0, bytes_per_member_s=150.0)),
        MapRow(B, result("swim")),
        MapRow(B, result("lifeguard", fp_total=2, fp_unresponsive=2,
                         detect_full_s=math.nan)),
    ]


def test_ratios_targets_and_worst_cells() -> None:
    assert ratio(3, 0) == math.inf
    assert math.isnan(ratio(0, 0))
    assert ratio(1, 4) == 0.25
    assert meets(Target.FEWER_100X, 1, 100)
    assert not meets(Target.FEWER_100X, 1, 99)
    assert meets(Target.FEWER_30X, 0, 0)
    assert not meets(Target.FEWER_30X, 1, 0)
    assert meets(Target.AT_MOST_1_1X, 11, 10)
    assert not meets(Target.AT_MOST_1_1X, 11.1, 10)
    assert not meets(Target.AT_MOST_1_2X, math.nan, 10)
    summaries = summarize(synthetic())
    lg_a = next(s for s in summaries if s.cell == A and s.config == "lifeguard")
    assert lg_a.values["fp_refutable"] == 10  # never slowed + responsive
    metric = {m.name: m for m in METRICS}
    r, worst, swim = worst_cells(summaries, "lifeguard", metric["fp_total"])
    assert (r, worst.cell if worst else None) == (math.inf, B)  # SWIM had none there
    assert swim is not None
    assert swim.values["fp_total"] == 0
    r, worst, _ = worst_cells(summaries, "lifeguard", metric["bytes_per_member_s"])
    assert r == 1.5
    assert worst is not None
    assert worst.cell == A


def test_markdown_and_csv_files(tmp_path: Path) -> None:
    rows = synthetic()
    meta = {"members": 100, "duration": 150.0, "seeds": [1], "configs": ["swim", "lifeguard"],
            "command": "swimguard sim map ..."}
    text = map_markdown(rows, meta)
    assert "| bytes per member-second | memberlist's Lifeguard | 1.50x | `exp:2/30-90/a4` |" in text
    # Targets: A fails the 30x (10 vs 300) and bytes; B holds FP targets, has no detection.
    assert "| memberlist's Lifeguard | 2/2 | 1/2 | 0/2 | 1/2 |" in text
    # fp_total new, never-slowed and refutable none on both sides, no detection to compare
    assert "| `fixed:2/30-90/a4` | 0 / 0 / 0 / 0 | new | - | - | - | 1.00x |" in text
    paths = write_map(tmp_path, rows, meta, plot_png=False)
    assert [p.name for p in paths] == ["results.csv", "cells.csv", "results.json", "map.md"]
    with (tmp_path / "results.csv").open() as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 4
    assert runs[0]["dist"] == "exp"
    assert runs[0]["fp_responsive"] == "50"
    with (tmp_path / "cells.csv").open() as f:
        cells = list(csv.DictReader(f))
    lg_b = next(c for c in cells if c["cell"] == B.key and c["config"] == "lifeguard")
    assert lg_b["fp_total_vs_swim"] == "inf"
    assert lg_b["detect_full_s"] == ""
    again = [MapRow.from_json(r) for r in json.loads((tmp_path / "results.json").read_text())
             ["rows"]]
    assert [dataclasses.astuple(r.result)[:6] for r in again] == [
        dataclasses.astuple(r.result)[:6] for r in rows]
    assert math.isnan(again[3].result.detect_full_s)


@pytest.mark.parametrize(
    "args",
    [
        ["--dists", "normal"],
        ["--means", "0"],
        ["--episodes", "2-3"],
        ["--timers", "early"],
        ["--anomalies", "0"],
        ["--configs", "nope"],
        ["--members", "4", "--anomalies", "4"],
        ["--seeds", "0"],
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str]) -> None:
    assert main(["map", "--out", str(tmp_path), "--no-plot", *args]) == 2


@pytest.mark.slow
def test_tiny_map_runs_writes_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "map"
    argv = ["map", "--dists", "exp", "--means", "1", "--episodes", "5-15,permanent",
            "--timers", "late", "--fifo", "fifo", "--anomalies", "2", "--members", "10",
            "--duration", "60", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    runs = (out / "results.partial.jsonl").read_text().splitlines()
    assert len(runs) == 2 * 3
    text = (out / "map.md").read_text()
    assert "`exp:1/permanent/a2`" in text
    assert "## Worst cell per metric" in text
    for metric in METRICS:
        assert (out / f"map_{metric.name}.png").stat().st_size > 1000
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert all(r["crashes"] >= 1 for r in rows)
    # Resuming with one more configuration runs only that configuration's cells.
    assert main([*argv, "--resume", "--configs", "lifeguard,lha-probe", "--no-plot"]) == 0
    assert len((out / "results.partial.jsonl").read_text().splitlines()) == 2 * 4


def test_report_only_writes_the_outputs_of_partial_runs(tmp_path: Path) -> None:
    rows = synthetic()
    lines = [json.dumps(r.to_json()) for r in rows[:3]]  # B's lifeguard run not finished
    lone = MapRow(MapCell(DelayKind.EXP, 8.0, Episodes.SHORT, True, True, 4), result("lifeguard"))
    lines.append(json.dumps(lone.to_json()))  # no SWIM run in its cell yet: left out
    (tmp_path / "results.partial.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["map", "--out", str(tmp_path), "--report-only", "--no-plot", "--quiet"]
    assert main(argv) == 0
    with (tmp_path / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 3
    assert "`exp:8/1-4/a4`" not in (tmp_path / "map.md").read_text()
    (tmp_path / "results.partial.jsonl").write_text("{not json\n")
    assert main(argv) == 2
