"""bench.gray_bench: line parsing, the classification of declarations, and a tiny real run."""

from __future__ import annotations

import os
from dataclasses import asdict

import pytest

from bench import gray_bench as gb


def _run(**kwargs: object) -> gb.Run:
    p = gb.Params(members=4, slowed=1, duration=100.0)
    run = gb.Run("memberlist", False, 1, asdict(p), ["n1"], "n3", kill_time=50.0)
    for key, value in kwargs.items():
        setattr(run, key, value)
    return run


def test_recorder_reads_events_gray_lines_and_memberlist_suspicions() -> None:
    run = _run()
    rec = gb._Recorder(run)
    rec.expect_ready = 1
    rec.line("n0:out", "READY n0", 1.0)
    rec.line("n0:out", "EVENT join n0", 1.0)  # about itself: ignored
    rec.line("n0:out", "EVENT failed n1", 2.0)
    rec.line("n2:out", "EVENT suspect n1", 2.5)
    rec.line("n1:err", "GRAY n1 slow=on t=1700000000.250000 for=12.500", 3.0)
    rec.line("n1:err", "GRAY n1 slow=off t=1700000012.750000 for=3.000 packets{n=1}", 3.0)
    rec.line("n2:err", "2026/12/04 18:00:00 [INFO] memberlist: Suspect n1 has failed, no acks"
             " received", 4.0)  # fmt: skip
    rec.line("n2:err", "GRAY n2 stats t=1700000020.000000 packets{n=1}", 5.0)
    assert rec.ready_event.is_set()
    assert run.events == [(2.0, "n0", "failed", "n1")]
    assert run.suspicions == [(2.5, "n2", "n1"), (4.0, "n2", "n1")]
    assert run.toggles == [(1700000000.25, "n1", True, 12.5), (1700000012.75, "n1", False, 3.0)]


def test_declarations_are_classified_by_the_declared_member_s_lag() -> None:
    run = _run(
        events=[
            (10.0, "n0", "failed", "n2"),  # never slowed
            (20.0, "n0", "failed", "n1"),  # suspected at 14: lag 1 s < 6 s used
            (40.0, "n1", "failed", "n2"),  # by a slowed observer, about a never-slowed one
            (45.0, "n2", "failed", "n1"),  # suspected at 35: lag >= 10 s (unread probe)
            (49.0, "n0", "failed", "n3"),  # the victim, before its kill: false
            (55.0, "n0", "failed", "n3"),  # the kill, seen after 5 s ...
            (58.0, "n1", "failed", "n3"),
            (62.0, "n2", "failed", "n3"),  # ... and by all survivors after 12 s
            (150.0, "n0", "failed", "n1"),  # after the duration: not counted
        ],
        suspicions=[(14.0, "n0", "n1"), (35.0, "n2", "n1")],
        pings=[("n1", 15.0, 16.0), ("n1", 35.0, None), ("n1", 60.0, 60.001)],
    )
    got = gb.analyse(run)
    assert {k: got[k] for k in ("total", "never_slowed", "slowed_responsive",
                                "slowed_beyond", "by_slowed_observers")} == {
        "total": 5, "never_slowed": 3, "slowed_responsive": 1, "slowed_beyond": 1,
        "by_slowed_observers": 1,
    }  # fmt: skip
    assert got["detect_first"] == pytest.approx(5.0)
    assert got["detect_all"] == pytest.approx(12.0)
    assert got["probes_unanswered"] == 1
    assert "| Go memberlist, Lifeguard | (a) dialed on time | 5 [3] | 1 / 1 |" in gb.table(
        [{"flavour": "memberlist", "dialed": False, "seed": 1, **got}]
    )


def test_detection_needs_every_survivor() -> None:
    run = _run(events=[(55.0, "n0", "failed", "n3")])
    got = gb.analyse(run)
    assert got["detect_first"] == pytest.approx(5.0)
    assert got["detect_all"] is None
    assert got["detected_by"] == 1


def _mlnode() -> str:
    found = gb.find_mlnode()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("mlnode is not built but CI is set: `make mlnode`")
        pytest.skip("mlnode not built (`make mlnode`)")
    return found


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_real_run_swimguard_and_memberlist_share_the_schedule() -> None:
    """N=6, 2 slowed, 30 s, one seed, variant (b): plumbing and counts, not targets."""
    mlnode = _mlnode()
    p = gb.Params(members=6, slowed=2, duration=30.0, settle=6.0, kill_at=0.3,
                  slow_on=(3.0, 8.0), slow_off=(2.0, 4.0), slow_mean=1.0)  # fmt: skip
    runs = {
        name: gb.run_one(gb.FLAVOURS[name], dialed=True, seed=3, p=p, mlnode=mlnode)
        for name in ("default", "memberlist")
    }
    schedules = {}
    for name, run in runs.items():
        assert run.ready == 6, name
        got = gb.analyse(run)
        assert got["total"] == (
            got["never_slowed"] + got["slowed_responsive"] + got["slowed_beyond"]
        )
        assert got["detected_by"] == 5, name  # every survivor saw the kill
        assert got["detect_first"] is not None
        assert got["detect_all"] >= got["detect_first"]
        # Both slowed members had episodes, and read (late) some of the bench's probes.
        for member in run.slowed:
            assert any(m == member and on for _, m, on, _ in run.toggles), (name, member)
            assert any(n == member and a is not None for n, _, a in run.pings), (name, member)
        assert got["lag_max"] > 0.5  # slowed: some probe waited in the queue
        schedules[name] = [(m, on, length) for t, m, on, length in run.toggles if t < 20]
    # The same seed draws the same episodes in Go memberlist and in swimguard.
    assert schedules["default"] == schedules["memberlist"]
    assert len(schedules["default"]) >= 4


def test_saved_runs_are_rounded_to_the_millisecond() -> None:
    assert gb._rounded({"a": [(1.23456, "x", None, True)], "b": 2}) == {
        "a": [[1.235, "x", None, True]],
        "b": 2,
    }
