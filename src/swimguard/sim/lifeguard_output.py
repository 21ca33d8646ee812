"""Files the Lifeguard experiment writes: results.csv/.json, summary.md, lifeguard.png.

The summary puts our sums next to the paper's (Lifeguard paper, α=5 β=6, summed over 1-32
concurrent anomalies; research note §1.3-1.4). Absolute counts cannot be compared (cluster
size, run length and repetitions differ); percentages of the SWIM baseline can.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swimguard.sim.experiment import CONFIG_NAMES, RunResult

__all__ = ["PAPER", "aggregate", "write_all"]

# (FP events, FP- events, msgs % of SWIM, bytes % of SWIM): paper table, research note §1.3/1.4.
PAPER: Mapping[str, tuple[int, int, float, float]] = {
    "swim": (339_002, 1_326, 100.00, 100.00),
    "lha-probe": (229_574, 436, 98.46, 90.03),
    "lha-suspicion": (10_174, 89, 111.31, 106.52),
    "buddy": (318_935, 591, 100.07, 99.01),
    "lifeguard": (5_193, 25, 110.59, 97.97),
}


def _ratio(base: float, value: float) -> float:
    if math.isnan(base) or math.isnan(value):
        return math.nan
    if value == 0:
        return math.inf if base > 0 else math.nan
    return base / value


def _median(values: Sequence[float]) -> float:
    data = [v for v in values if not math.isnan(v)]
    return statistics.median(data) if data else math.nan


def _sum_recorded(rows: Sequence[RunResult], key: str) -> float:
    """Sum of a count column; NaN when some row predates it (recorded as -1)."""
    values = [getattr(r, key) for r in rows]
    return sum(values) if all(v >= 0 for v in values) else math.nan


def aggregate(results: Sequence[RunResult]) -> dict[str, dict[str, float]]:
    """Per configuration: sums of FP counts, medians of latencies, means of load."""
    out: dict[str, dict[str, float]] = {}
    for name in CONFIG_NAMES:
        rows = [r for r in results if r.config == name]
        if not rows:
            continue
        out[name] = {
            "runs": len(rows),
            "fp_total": sum(r.fp_total for r in rows),
            "fp_healthy": sum(r.fp_healthy for r in rows),
            "fp_at_healthy": sum(r.fp_at_healthy for r in rows),
            "fp_observed": sum(r.fp_observed for r in rows),
            # -1 marks rows recorded before fp_deaths existed: no sum then.
            "fp_deaths": (
                sum(r.fp_deaths for r in rows) if all(r.fp_deaths >= 0 for r in rows) else math.nan
            ),
            "fp_responsive": _sum_recorded(rows, "fp_responsive"),
            "fp_unresponsive": _sum_recorded(rows, "fp_unresponsive"),
            "detect_first_s": _median([r.detect_first_s for r in rows]),
            "detect_full_s": _median([r.detect_full_s for r in rows]),
            "msgs_per_member_s": statistics.fmean(r.msgs_per_member_s for r in rows),
            "bytes_per_member_s": statistics.fmean(r.bytes_per_member_s for r in rows),
        }
    base = out.get("swim")
    if base is not None:
        for agg in out.values():
            for key in (
                "fp_total",
                "fp_healthy",
                "fp_at_healthy",
                "fp_observed",
                "fp_deaths",
                "fp_responsive",
                "fp_unresponsive",
            ):
                agg[f"{key}_reduction"] = _ratio(base[key], agg[key])
            agg["detect_full_vs_swim"] = agg["detect_full_s"] / base["detect_full_s"]
            agg["msgs_pct_swim"] = 100 * agg["msgs_per_member_s"] / base["msgs_per_member_s"]
            agg["bytes_pct_swim"] = 100 * agg["bytes_per_member_s"] / base["bytes_per_member_s"]
    return out


def _fmt_x(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞ (0 FPs)"
    return f"{value:.1f}x"


def _fmt_n(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def summary_markdown(results: Sequence[RunResult], meta: Mapping[str, Any]) -> str:
    """The table for the README: ours next to the paper's, as reductions vs SWIM."""
    agg = aggregate(results)
    lines = [
        "| config | FP declarations | reduction vs SWIM | paper FP reduction | "
        "FP declared by never-slowed members | reduction | paper FP- reduction | "
        "FP about never-slowed members | reduction | distinct false deaths | reduction | "
        "median full detection (s) | vs SWIM | msgs % SWIM (paper) | bytes % SWIM (paper) | "
        "FP about slowed but responsive members | reduction | "
        "FP about unresponsive members | reduction |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
        "|---:|---:|---:|---:|",
    ]
    paper_swim = PAPER["swim"]
    for name, a in agg.items():
        paper = PAPER.get(name)
        p_fp = _fmt_x(paper_swim[0] / paper[0]) if paper else "-"
        p_fpm = _fmt_x(paper_swim[1] / paper[1]) if paper else "-"
        p_msgs = f"{paper[2]:.1f}" if paper else "-"
        p_bytes = f"{paper[3]:.1f}" if paper else "-"
        lines.append(
            f"| {name} | {a['fp_total']:.0f} | {_fmt_x(a.get('fp_total_reduction', math.nan))} "
            f"| {p_fp} | {a['fp_at_healthy']:.0f} "
            f"| {_fmt_x(a.get('fp_at_healthy_reduction', math.nan))} | {p_fpm} "
            f"| {a['fp_healthy']:.0f} | {_fmt_x(a.get('fp_healthy_reduction', math.nan))} "
            f"| {_fmt_n(a['fp_deaths'])} | {_fmt_x(a.get('fp_deaths_reduction', math.nan))} "
            f"| {a['detect_full_s']:.2f} | {a.get('detect_full_vs_swim', math.nan):.2f}x "
            f"| {a.get('msgs_pct_swim', math.nan):.1f} ({p_msgs}) "
            f"| {a.get('bytes_pct_swim', math.nan):.1f} ({p_bytes}) "
            f"| {_fmt_n(a['fp_responsive'])} "
            f"| {_fmt_x(a.get('fp_responsive_reduction', math.nan))} "
            f"| {_fmt_n(a['fp_unresponsive'])} "
            f"| {_fmt_x(a.get('fp_unresponsive_reduction', math.nan))} |"
        )
    head = [
        "# Lifeguard reproduction",
        "",
        f"Members {meta.get('members')}, anomalies {meta.get('anomalies')}, "
        f"{meta.get('duration')} virtual s per run, seeds {meta.get('seeds')}, "
        f"α={meta.get('alpha')} β={meta.get('beta')}; anomaly model: {meta.get('anomaly')}. "
        f"Sums over all anomaly counts and seeds; latencies are medians over all crashes. "
        f"Every false declaration is about a never-slowed member, a slowed but responsive one "
        f"(every input read within the suspicion timeout used: it could have refuted) or an "
        f"unresponsive one (some input waited at least that long).",
        "",
        f"Command: `{meta.get('command')}`",
        "",
    ]
    return "\n".join([*head, *lines, ""])


def plot(results: Sequence[RunResult], path: Path) -> None:
    """FP declarations vs concurrent anomalies, one line per configuration (paper fig. 2).

    The y axis is symlog (log above 1, linear below) so that zero counts stay visible.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    anomalies = sorted({r.anomalies for r in results})
    fig, axes = plt.subplots(1, 4, figsize=(22, 4.8), constrained_layout=True)
    panels = (
        ("fp_total", "all false failure declarations"),
        ("fp_healthy", "about members never slowed (fp_healthy)"),
        ("fp_at_healthy", "declared by members never slowed"),
        ("fp_deaths", "distinct false deaths (member, incarnation)"),
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        for name in CONFIG_NAMES:
            rows = [r for r in results if r.config == name]
            if not rows:
                continue
            if any(getattr(r, key) < 0 for r in rows):
                continue  # not recorded in these rows (older results)
            ys = [sum(getattr(r, key) for r in rows if r.anomalies == a) for a in anomalies]
            ax.plot(anomalies, ys, marker="o", label=name)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("concurrent anomalies (slow members)")
        ax.set_ylabel("FP events (sum over seeds), log scale")
        ax.set_title(title)
        ax.set_xticks(anomalies)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(
    out: Path, results: Sequence[RunResult], meta: Mapping[str, Any], *, plot_png: bool = True
) -> list[Path]:
    """Write every output file into `out` (the plot unless `plot_png` is False); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [dataclasses.asdict(r) for r in results]
    csv_path = out / "results.csv"
    with csv_path.open("w", newline="") as f:
        fields = [field.name for field in dataclasses.fields(RunResult)]
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    json_path = out / "results.json"
    summary = aggregate(results)
    clean = {
        k: {
            kk: (None if isinstance(vv, float) and not math.isfinite(vv) else vv)
            for kk, vv in v.items()
        }
        for k, v in summary.items()
    }
    cleaned_rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows
    ]
    json_path.write_text(
        json.dumps({"meta": dict(meta), "summary": clean, "rows": cleaned_rows}, indent=1) + "\n"
    )
    md_path = out / "summary.md"
    md_path.write_text(summary_markdown(results, meta))
    if not plot_png:
        return [csv_path, json_path, md_path]
    png_path = out / "lifeguard.png"
    plot(results, png_path)
    return [csv_path, json_path, md_path, png_path]
