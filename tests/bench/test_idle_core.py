"""bench.idle_core: a tiny settled Serf cluster on the simulator, measured and profiled."""

from __future__ import annotations

import pytest

from bench import idle_core


def test_tiny_run_measures_and_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert idle_core.main(["--members", "4", "--virtual", "5", "--profile", "5"]) == 0
    out = capsys.readouterr().out
    assert "idle core: 4 members, 5 virtual s:" in out
    assert "per member-second" in out
    assert "tottime" in out  # the profile's table


def test_measure_counts_cpu_per_member_second() -> None:
    got = idle_core.measure(3, 5.0, seed=1, profile=0)
    assert got["cpu_s"] > 0
    assert got["us_per_member_second"] == pytest.approx(got["cpu_s"] / 5.0 / 3 * 1e6)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit):
        idle_core.main(["--members", "1"])
