"""Lifeguard local health ("awareness", LHA-Probe) plus swimguard's loop-lag input.

memberlist rule (`awareness.go`, `state.go`): an integer score clamped to
[0, max_multiplier - 1]; a probe that gets any ack scores -1, a failed probe
scores +(expected nacks - received nacks) (or +1 when no relay can nack), a
refutation of a suspicion about ourselves scores +1. The failed-probe wait is
`probe_interval * (score + 1)`.

Loop-lag rule (swimguard extension). The driver reports how late each timer
fired (`Node.report_loop_lag`). A process whose event loop is blocked cannot
receive acks in time, so it would accuse healthy peers. Therefore:

* a report with `lag > threshold` (threshold = `loop_lag_threshold * probe_timeout`)
  raises the score by `ceil(lag / probe_timeout)` (at least +1), and the amount
  is remembered as "lag debt";
* once reports have been on time (`lag <= threshold`) for a whole
  `probe_interval` since the last stall or the last decay step, one point of lag
  debt is paid back (score -1). Debt never lowers the score below what probes and
  refutations alone put there, and probe successes keep lowering it as usual.

(The node additionally stops counting the stalled time against peers: in-flight
probe and suspicion deadlines are pushed back by the lag; see `Node.report_loop_lag`.)

Application rule (swimguard extension, `Node.report_health`). The application knows of
slowness the protocol cannot see (a full disk, a saturated worker pool, GC pressure). A
report of `points > 0` is evidence of the same kind as missed nacks: it raises the score
by `points` (clamped) and then decays like any other evidence, one point per successful
probe, so an application whose trouble lasts reports again (once per probe interval is
enough). A report of 0 withdraws what is left of the application's points at once: the
application knows when its trouble is over, unlike a peer's silence. Like lag debt, the
application's points are capped by the score, never lowering it below what probes,
refutations and loop lag put there.
"""

from __future__ import annotations

import math

from swimguard.protocol.history import HealthCause, History

__all__ = ["Awareness", "check_app_score"]


def check_app_score(score: object, max_multiplier: int) -> int:
    """`score` if it is a valid application health score, else ValueError saying why."""
    if isinstance(score, bool) or not isinstance(score, int):
        raise ValueError(f"health score must be an int, got {score!r}")
    if not 0 <= score < max_multiplier:
        raise ValueError(f"health score {score} outside [0, {max_multiplier - 1}]")
    return score


class Awareness:
    """Health score in [0, max_multiplier - 1]; 0 is healthy."""

    __slots__ = ("_app", "_debt", "_history", "_last_step", "_max", "at_max_since", "score")

    def __init__(self, max_multiplier: int, history: History | None = None) -> None:
        self._max = max_multiplier
        self._history = history
        self.score = 0
        self._debt = 0
        self._app = 0
        self._last_step: float | None = None
        self.at_max_since: float | None = None
        """Since when the score has been at its maximum (a positive one), allowing one point
        below it; None once it fell further. One successful probe (-1) between two stalls
        or failures is no recovery; a second one in a row is (see `protocol.fencing`)."""

    def apply_delta(self, delta: int, *, cause: HealthCause, now: float) -> None:
        """Add `delta` to the score, clamping to [0, max_multiplier - 1]; a change is
        recorded in the history with its `cause`."""
        before = self.score
        score = self.score = min(max(before + delta, 0), self._max - 1)
        self._debt = min(self._debt, score)
        self._app = min(self._app, score)
        if score == before:
            return
        top = self._max - 1
        if score == top:
            if self.at_max_since is None:
                self.at_max_since = now
        elif score < max(top - 1, 1):
            self.at_max_since = None
        if self._history is not None:
            self._history.health_changed(cause, score - before, score, now=now)

    def report_app(self, points: int, *, now: float) -> None:
        """Apply the application rule: `points > 0` adds evidence, 0 withdraws the app's."""
        if points > 0:
            before = self.score
            self.apply_delta(points, cause=HealthCause.APP_REPORT, now=now)
            self._app += self.score - before
        elif self._app:
            withdraw = self._app
            self._app = 0
            self.apply_delta(-withdraw, cause=HealthCause.APP_WITHDRAWN, now=now)

    def scale_timeout(self, timeout: float) -> float:
        """`timeout * (score + 1)`."""
        return timeout * (self.score + 1)

    def report_lag(self, lag: float, *, now: float, threshold: float, unit: float,
                   decay_period: float) -> bool:
        """Apply the loop-lag rule; returns True when `lag` counted as a stall."""
        if lag > threshold:
            before = self.score
            self.apply_delta(max(1, math.ceil(lag / unit)), cause=HealthCause.LOOP_LAG, now=now)
            self._debt += self.score - before
            self._last_step = now
            return True
        if self._debt > 0:
            if self._last_step is None:
                self._last_step = now
            elif now - self._last_step >= decay_period:
                self._debt -= 1
                self.apply_delta(-1, cause=HealthCause.LAG_RECOVERED, now=now)
                self._last_step = now
        return False

    @property
    def app_points(self) -> int:
        """Score points still attributed to the application's reports."""
        return self._app

    @property
    def lag_debt(self) -> int:
        """Score points still attributed to loop lag."""
        return self._debt
