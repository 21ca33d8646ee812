"""Files `sim map` writes: results.csv/.json (runs), cells.csv (per cell), map.md, heatmaps.

Every metric is shown as a ratio to SWIM in the same cell (same slow members, episodes and
crashes), so cells of very different severity share one colour scale.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swimguard.sim.anomaly_map import (
    METRICS,
    CellSummary,
    Episodes,
    MapCell,
    MapRow,
    Metric,
    Target,
    baseline,
    meets,
    ratio,
    summarize,
    worst_cells,
)
from swimguard.sim.experiment import RunResult

__all__ = ["map_markdown", "write_map"]

CONFIG_LABELS = {
    "swim": "SWIM",
    "lifeguard": "memberlist's Lifeguard",
    "lifeguard-looplag": "swimguard default",
}


def _label(config: str) -> str:
    return CONFIG_LABELS.get(config, config)


def _fmt_ratio(r: float) -> str:
    if math.isnan(r):
        return "-"
    if math.isinf(r):
        return "new"
    if r == 0:
        return "0x"
    return f"{r:.2f}x" if r >= 0.01 else f"{r:.3f}x"


def _fmt_value(metric: Metric, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.0f}" if metric.is_count else f"{value:.2f}"


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def map_markdown(rows: Sequence[MapRow], meta: Mapping[str, Any]) -> str:
    """The summary (worst cell per metric, targets) and one line per cell."""
    summaries = summarize(rows)
    configs = [c for c in meta.get("configs", ()) if c != "swim"] or sorted(
        {s.config for s in summaries} - {"swim"}
    )
    base = baseline(summaries)
    cells = list(base)
    out = [
        "# Lifeguard across the anomaly map",
        "",
        f"{len(cells)} cells, {len(rows)} runs: members {meta.get('members')}, "
        f"{meta.get('duration')} virtual s per run, seeds {meta.get('seeds')}; every metric is a "
        "ratio to SWIM in the same cell (same slow members, episodes and crashes). "
        "Counts are sums over seeds, latencies medians over crashes, load means over runs. "
        "A count ratio is `-` when neither had any, `new` when SWIM had none.",
        "",
        f"Command: `{meta.get('command')}`",
        "",
        "## Worst cell per metric",
        "",
        "| metric | configuration | worst ratio to SWIM | cell | value (SWIM) |",
        "|---|---|---:|---|---:|",
    ]
    for metric in METRICS:
        for config in configs:
            r, s, b = worst_cells(summaries, config, metric)
            if s is None or b is None:
                out.append(f"| {metric.label} | {_label(config)} | - | - | - |")
                continue
            out.append(
                f"| {metric.label} | {_label(config)} | {_fmt_ratio(r)} | `{s.cell.key}` "
                f"| {_fmt_value(metric, s.values[metric.name])} "
                f"({_fmt_value(metric, b.values[metric.name])}) |"
            )
    out += [
        "",
        "## Targets (issue 15): cells where each holds",
        "",
        "| configuration | " + " | ".join(
            f"{m.label}: {m.target.value}" for m in METRICS if m.target is not Target.NONE
        ) + " |",
        "|---|" + "---:|" * sum(1 for m in METRICS if m.target is not Target.NONE),
    ]
    by_key = {(s.cell, s.config): s for s in summaries}
    for config in configs:
        counts = []
        for metric in METRICS:
            if metric.target is Target.NONE:
                continue
            held = sum(
                1
                for cell in cells
                if (cell, config) in by_key
                and meets(metric.target, by_key[cell, config].values[metric.name],
                          base[cell].values[metric.name])
            )
            total = sum(1 for cell in cells if (cell, config) in by_key)
            counts.append(f"{held}/{total}")
        out.append(f"| {_label(config)} | " + " | ".join(counts) + " |")
    shown = [m for m in METRICS if m.name in (
        "fp_total", "fp_never_slowed", "fp_refutable", "detect_full_s", "bytes_per_member_s"
    )]
    out += [
        "",
        "## Every cell",
        "",
        "SWIM's false declarations as all / about never-slowed / slowed-responsive / "
        "unresponsive; then, per configuration, the ratio to SWIM of: "
        + ", ".join(m.label for m in shown) + ".",
        "",
        "| cell | SWIM FP | " + " | ".join(
            f"{_label(c)}: {m.name}" for c in configs for m in shown
        ) + " |",
        "|---|---:|" + "---:|" * (len(configs) * len(shown)),
    ]
    for cell in sorted(cells, key=MapCell.sort_key):
        bv = base[cell].values
        swim_fp = (
            f"{bv['fp_total']:.0f} / {bv['fp_never_slowed']:.0f} / {bv['fp_responsive']:.0f} "
            f"/ {bv['fp_unresponsive']:.0f}"
        )
        parts = []
        for config in configs:
            found = by_key.get((cell, config))
            for m in shown:
                parts.append(
                    "n/a" if found is None
                    else _fmt_ratio(ratio(found.values[m.name], bv[m.name]))
                )
        out.append(f"| `{cell.key}` | {swim_fp} | " + " | ".join(parts) + " |")
    return "\n".join([*out, ""])


def _cells_rows(summaries: Sequence[CellSummary]) -> list[dict[str, Any]]:
    base = baseline(summaries)
    rows = []
    for s in summaries:
        row: dict[str, Any] = {"cell": s.cell.key, **s.cell.fields(), "config": s.config,
                               "runs": s.runs}
        b = base.get(s.cell)
        for metric in METRICS:
            row[metric.name] = _nan_to_none(s.values[metric.name])
            r = ratio(s.values[metric.name], b.values[metric.name]) if b else math.nan
            row[f"{metric.name}_vs_swim"] = _nan_to_none(r) if not math.isinf(r) else "inf"
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def heatmap(rows: Sequence[MapRow], metric: Metric, path: Path, configs: Sequence[str]) -> None:
    """One PNG: a panel per (timers, FIFO) and configuration; delay down, episodes x count across.

    Colour: ratio to SWIM on a log scale (counts 1/1000x to 10x, latency and load 1/4x to 8x);
    a count of 0 where SWIM had some is drawn at the bottom of the scale, grey means neither
    had any (or no detection to compare).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    summaries = summarize(rows)
    base = baseline(summaries)
    by_key = {(s.cell, s.config): s for s in summaries}
    cells = sorted(base, key=MapCell.sort_key)
    modes = sorted({(c.timers_late, c.fifo) for c in cells}, reverse=True)
    ys = sorted({(c.dist.value, c.mean) for c in cells})
    order = list(Episodes)
    xs = sorted({(c.episodes, c.anomalies) for c in cells},
                key=lambda e: (order.index(e[0]), e[1]))
    low, high = (1e-3, 10.0) if metric.is_count else (0.25, 8.0)
    norm = LogNorm(vmin=low, vmax=high)
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="lightgrey")
    fig, axes = plt.subplots(
        len(modes), len(configs), squeeze=False,
        figsize=(
            1.5 + max(3.5, 0.4 * len(xs)) * len(configs),
            1.0 + max(2.4, 1.2 + 0.3 * len(ys)) * len(modes),
        ),
        constrained_layout=True,
    )
    image = None
    for i, (timers, fifo) in enumerate(modes):
        for j, config in enumerate(configs):
            ax = axes[i][j]
            grid = [[math.nan] * len(xs) for _ in ys]
            raw: dict[tuple[int, int], float] = {}
            for cell in cells:
                if (cell.timers_late, cell.fifo) != (timers, fifo):
                    continue
                s = by_key.get((cell, config))
                if s is None:
                    continue
                r = ratio(s.values[metric.name], base[cell].values[metric.name])
                at = (ys.index((cell.dist.value, cell.mean)),
                      xs.index((cell.episodes, cell.anomalies)))
                raw[at] = r
                grid[at[0]][at[1]] = r if math.isnan(r) else min(max(r, low), high)
            image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
            if len(xs) * len(ys) <= 120:  # small maps: the numbers too (unclipped)
                for (yi, xi), value in raw.items():
                    if not math.isnan(value):
                        ax.text(xi, yi, _fmt_ratio(value), ha="center", va="center",
                                fontsize=6)
            ax.set_title(
                f"{_label(config)}\ntimers {'late' if timers else 'on time'}, "
                f"{'FIFO' if fifo else 'no FIFO'}", fontsize=8,
            )
            ax.set_yticks(range(len(ys)), [f"{d}:{m:g}" for d, m in ys], fontsize=7)
            ax.set_xticks(range(len(xs)), [f"{e.value} a{a}" for e, a in xs], fontsize=6,
                          rotation=90)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="ratio to SWIM")
    fig.suptitle(f"{metric.label}, ratio to SWIM (log scale)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_map(
    out: Path, rows: Sequence[MapRow], meta: Mapping[str, Any], *, plot_png: bool = True
) -> list[Path]:
    """Write every output into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    cell_fields = list(MapCell.fields(rows[0].cell)) if rows else []
    result_fields = [f.name for f in dataclasses.fields(RunResult)]
    results_csv = out / "results.csv"
    _write_csv(results_csv, [r.to_json() for r in rows],
               cell_fields + [f for f in result_fields if f not in cell_fields])
    summaries = summarize(rows)
    cells_csv = out / "cells.csv"
    cell_rows = _cells_rows(summaries)
    _write_csv(cells_csv, cell_rows, list(cell_rows[0]) if cell_rows else ["cell"])
    results_json = out / "results.json"
    results_json.write_text(
        json.dumps({"meta": dict(meta), "rows": [r.to_json() for r in rows]}, indent=1) + "\n"
    )
    md = out / "map.md"
    md.write_text(map_markdown(rows, meta))
    paths = [results_csv, cells_csv, results_json, md]
    if plot_png and rows:
        configs = [c for c in meta.get("configs", ()) if c != "swim"]
        for metric in METRICS:
            png = out / f"map_{metric.name}.png"
            heatmap(rows, metric, png, configs)
            paths.append(png)
    return paths
