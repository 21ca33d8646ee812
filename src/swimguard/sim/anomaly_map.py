"""The anomaly map: Lifeguard's false positives, latency and cost over many gray-failure shapes.

One study (`sim lifeguard`) measures one anomaly model; users deploy into shapes nobody chose.
A *cell* of the map is one shape: a delay distribution (fixed or exponential) and its mean,
how long slow episodes last (1-4 s, 5-15 s, 30-90 s, or for the whole run), whether the slow
member's timers fire late too, whether its inputs wait in one FIFO queue, and how many of the
members are slow. Each cell runs every configuration on the same seeds (the run machinery of
`experiment.py`, so the configurations of a cell face the same slow members, episodes and
crashes), and each metric is reported as a ratio to SWIM in the same cell.

A fixed delay never reorders inputs, so "no FIFO" would only repeat the FIFO cell: the grid
skips fixed-delay cells without FIFO whenever it also holds the FIFO ones.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from swimguard.sim.experiment import AnomalyModel, RunResult, RunSpec

__all__ = [
    "METRICS",
    "CellSummary",
    "DelayKind",
    "Episodes",
    "MapCell",
    "MapGrid",
    "MapRow",
    "Metric",
    "Target",
    "meets",
    "summarize",
    "worst_cells",
]

# Healthy gaps between slow episodes (the real-process rig uses the same).
GAP = (10.0, 30.0)
# "Permanent": one episode longer than any run (the schedule clips it at the run's end).
FOREVER = 1e9


class DelayKind(enum.Enum):
    """The distribution of each input's (and late timer's) wait."""

    FIXED = "fixed"
    EXP = "exp"


class Episodes(enum.Enum):
    """How long one slow episode lasts (uniform within the span)."""

    SHORT = "1-4"
    MEDIUM = "5-15"
    LONG = "30-90"
    PERMANENT = "permanent"

    @property
    def span(self) -> tuple[float, float]:
        """Episode length bounds in seconds."""
        if self is Episodes.PERMANENT:
            return (FOREVER, FOREVER)
        low, high = self.value.split("-")
        return (float(low), float(high))

    @property
    def gap(self) -> tuple[float, float]:
        """Healthy time between episodes; none when slow for good (it starts at once)."""
        return (0.0, 0.0) if self is Episodes.PERMANENT else GAP


@dataclasses.dataclass(frozen=True, slots=True)
class MapCell:
    """One anomaly shape."""

    dist: DelayKind
    mean: float
    episodes: Episodes
    timers_late: bool
    fifo: bool
    anomalies: int

    def sort_key(self) -> tuple[int, float, int, bool, bool, int]:
        """Grid order: distribution, mean, episode length, timers late first, FIFO first, count."""
        return (
            list(DelayKind).index(self.dist),
            self.mean,
            list(Episodes).index(self.episodes),
            not self.timers_late,
            not self.fifo,
            self.anomalies,
        )

    def slow_text(self) -> str:
        """The SlowSpec text (`sim/slow.py`) of this cell's slow members."""
        flags = ("" if self.timers_late else ",notimers") + ("" if self.fifo else ",nofifo")
        return f"{self.dist.value}:{self.mean:g}{flags}"

    def model(self) -> AnomalyModel:
        """The anomaly model the experiment runs."""
        return AnomalyModel(slow=self.slow_text(), on=self.episodes.span, off=self.episodes.gap)

    @property
    def key(self) -> str:
        """A stable text name, e.g. ``exp:2,notimers/30-90/a16`` (also the resume key)."""
        return f"{self.slow_text()}/{self.episodes.value}/a{self.anomalies}"

    def fields(self) -> dict[str, Any]:
        """Columns for the CSV files."""
        return {
            "dist": self.dist.value,
            "mean": self.mean,
            "episodes": self.episodes.value,
            "timers": "late" if self.timers_late else "on-time",
            "fifo": "fifo" if self.fifo else "no-fifo",
            "anomalies": self.anomalies,
        }

    @classmethod
    def from_fields(cls, row: Mapping[str, Any]) -> MapCell:
        """Inverse of `fields` (raises ValueError/KeyError on a bad row)."""
        return cls(
            dist=DelayKind(row["dist"]),
            mean=float(row["mean"]),
            episodes=Episodes(row["episodes"]),
            timers_late=_choice(row["timers"], "late", "on-time"),
            fifo=_choice(row["fifo"], "fifo", "no-fifo"),
            anomalies=int(row["anomalies"]),
        )


def _choice(value: object, yes: str, no: str) -> bool:
    if value not in (yes, no):
        raise ValueError(f"expected {yes!r} or {no!r}, got {value!r}")
    return value == yes


@dataclasses.dataclass(frozen=True, slots=True)
class MapGrid:
    """The axes of a map and how each run is sized."""

    dists: tuple[DelayKind, ...] = (DelayKind.FIXED, DelayKind.EXP)
    means: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    episodes: tuple[Episodes, ...] = tuple(Episodes)
    timers_late: tuple[bool, ...] = (True, False)
    fifo: tuple[bool, ...] = (True, False)
    anomalies: tuple[int, ...] = (1, 4, 32)
    configs: tuple[str, ...] = ("swim", "lifeguard", "lifeguard-looplag")
    members: int = 100
    duration: float = 150.0
    seeds: tuple[int, ...] = (1,)
    crash_interval: float = 30.0

    def cells(self) -> list[MapCell]:
        """Every cell, in a fixed order (fixed-delay cells without FIFO skipped, see above)."""
        cells = []
        for dist, mean, episodes, timers, fifo, anomalies in itertools.product(
            self.dists, self.means, self.episodes, self.timers_late, self.fifo, self.anomalies
        ):
            if dist is DelayKind.FIXED and not fifo and True in self.fifo:
                continue
            cells.append(MapCell(dist, mean, episodes, timers, fifo, anomalies))
        return cells

    def specs(self) -> Iterator[tuple[MapCell, RunSpec]]:
        """Every run: seed outermost (an interrupted map holds whole seeds), then cell, config."""
        for seed in self.seeds:
            for cell in self.cells():
                for config in self.configs:
                    yield cell, RunSpec(
                        config=config,
                        anomalies=cell.anomalies,
                        seed=seed,
                        members=self.members,
                        duration=self.duration,
                        anomaly=cell.model(),
                        crash_interval=self.crash_interval,
                    )


@dataclasses.dataclass(frozen=True, slots=True)
class MapRow:
    """One finished run of the map."""

    cell: MapCell
    result: RunResult

    def to_json(self) -> dict[str, Any]:
        """A flat JSON object (cell columns then result columns); NaN becomes null."""
        row: dict[str, Any] = {**self.cell.fields(), **dataclasses.asdict(self.result)}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> MapRow:
        """Inverse of `to_json`."""
        names = {f.name for f in dataclasses.fields(RunResult)}
        values = {k: v for k, v in row.items() if k in names}
        for key in ("detect_first_s", "detect_full_s"):
            if values.get(key) is None:
                values[key] = math.nan
        return cls(MapCell.from_fields(row), RunResult(**values))

    @property
    def key(self) -> tuple[str, str, int]:
        """(cell, configuration, seed): what identifies a run for --resume."""
        return (self.cell.key, self.result.config, self.result.seed)


class Target(enum.Enum):
    """How a metric's ratio to SWIM is judged (issue 15's targets for a default)."""

    FEWER_100X = "no FP, or >= 100x fewer than SWIM"
    FEWER_30X = ">= 30x fewer than SWIM (or none)"
    AT_MOST_1_1X = "<= 1.1x SWIM"
    AT_MOST_1_2X = "<= 1.2x SWIM"
    NONE = "-"


@dataclasses.dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity of a cell."""

    name: str
    label: str
    is_count: bool
    target: Target = Target.NONE


METRICS = (
    Metric("fp_total", "all false declarations", True),
    Metric("fp_never_slowed", "FP about never-slowed members", True, Target.FEWER_100X),
    Metric("fp_refutable", "FP about responsive members (never slowed, or could refute)", True,
           Target.FEWER_30X),
    Metric("fp_responsive", "FP about slowed but responsive members", True),
    Metric("fp_unresponsive", "FP about unresponsive members (defensible)", True),
    Metric("detect_first_s", "first detection of a crash (median s)", False),
    Metric("detect_full_s", "full detection of a crash (median s)", False, Target.AT_MOST_1_1X),
    Metric("msgs_per_member_s", "messages per member-second", False),
    Metric("bytes_per_member_s", "bytes per member-second", False, Target.AT_MOST_1_2X),
)


@dataclasses.dataclass(frozen=True, slots=True)
class CellSummary:
    """One configuration in one cell, over its seeds: sums of counts, medians, means."""

    cell: MapCell
    config: str
    runs: int
    values: Mapping[str, float]


def _median(values: Sequence[float]) -> float:
    data = [v for v in values if not math.isnan(v)]
    return statistics.median(data) if data else math.nan


def summarize(rows: Sequence[MapRow]) -> list[CellSummary]:
    """Per (cell, configuration), in the order first seen."""
    groups: dict[tuple[MapCell, str], list[RunResult]] = {}
    for row in rows:
        groups.setdefault((row.cell, row.result.config), []).append(row.result)
    out = []
    for (cell, config), results in groups.items():
        responsive = sum(r.fp_responsive for r in results)
        values = {
            "fp_total": float(sum(r.fp_total for r in results)),
            "fp_never_slowed": float(sum(r.fp_healthy for r in results)),
            "fp_responsive": float(responsive),
            "fp_unresponsive": float(sum(r.fp_unresponsive for r in results)),
            "fp_refutable": float(sum(r.fp_healthy for r in results) + responsive),
            "detect_first_s": _median([r.detect_first_s for r in results]),
            "detect_full_s": _median([r.detect_full_s for r in results]),
            "msgs_per_member_s": statistics.fmean(r.msgs_per_member_s for r in results),
            "bytes_per_member_s": statistics.fmean(r.bytes_per_member_s for r in results),
        }
        out.append(CellSummary(cell, config, len(results), values))
    return out


def ratio(value: float, base: float) -> float:
    """`value / base`: NaN when either is missing or both are 0, inf when only base is 0."""
    if math.isnan(value) or math.isnan(base):
        return math.nan
    if base == 0:
        return math.nan if value == 0 else math.inf
    return value / base


def meets(target: Target, value: float, base: float) -> bool:
    """Whether `value` (this configuration) meets `target` against `base` (SWIM, same cell)."""
    if target is Target.FEWER_100X:
        return value == 0 or value * 100 <= base
    if target is Target.FEWER_30X:
        return value == 0 or value * 30 <= base
    r = ratio(value, base)
    if math.isnan(r):
        return False  # no detection to compare: not shown to hold
    if target is Target.AT_MOST_1_1X:
        return r <= 1.1
    if target is Target.AT_MOST_1_2X:
        return r <= 1.2
    return True


def baseline(summaries: Sequence[CellSummary]) -> dict[MapCell, CellSummary]:
    """SWIM's summary per cell."""
    return {s.cell: s for s in summaries if s.config == "swim"}


def worst_cells(
    summaries: Sequence[CellSummary], config: str, metric: Metric
) -> tuple[float, CellSummary | None, CellSummary | None]:
    """(worst ratio to SWIM, that cell's summary, SWIM's) for `config`; a count beats 0 FPs.

    For counts, a cell where SWIM had none but `config` had some ranks above every finite
    ratio; when both had none the cell is not a candidate. (NaN, None, None) if no cell.
    """
    base = baseline(summaries)
    worst: tuple[float, CellSummary | None, CellSummary | None] = (math.nan, None, None)
    for s in summaries:
        b = base.get(s.cell)
        if s.config != config or b is None:
            continue
        r = ratio(s.values[metric.name], b.values[metric.name])
        if math.isnan(r):
            continue
        if math.isnan(worst[0]) or r > worst[0] or (
            r == worst[0] and s.values[metric.name] > worst[1].values[metric.name]  # type: ignore[union-attr]
        ):
            worst = (r, s, b)
    return worst
