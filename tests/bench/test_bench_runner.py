"""Smoke tests of `python -m bench`: runs present sub-benches, reports failures."""

from __future__ import annotations

import sys
import types

import bench.__main__ as runner
import pytest


@pytest.fixture
def fake_benches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def ok(argv: list[str] | None = None) -> int:
        calls.append(f"wire:{argv}")
        return 0

    def boom() -> int:
        calls.append("interop")
        raise RuntimeError("sub-bench broke")

    def exits(argv: list[str] | None = None) -> int:
        calls.append("sim")
        raise SystemExit(3)

    for name, fn in (("wire_bench", ok), ("interop_bench", boom), ("sim_scale", exits)):
        mod = types.ModuleType(f"bench.{name}")
        mod.main = fn  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"bench.{name}", mod)
    # cluster_bench is real; keep it out of this test by making it "missing".
    monkeypatch.setitem(sys.modules, "bench.cluster_bench", None)
    return calls


def test_runs_all_in_order_and_fails_on_any_failure(
    fake_benches: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # sys.modules[name] = None makes import raise ModuleNotFoundError(name=...) = missing.
    assert runner.main([]) == 1
    assert fake_benches == ["wire:[]", "interop", "sim"]
    out = capsys.readouterr().out
    assert "bench.cluster_bench: not present, skipped" in out
    assert "bench.interop_bench: FAILED (exception)" in out
    assert "bench.sim_scale: FAILED (exit 3)" in out
    assert "bench.wire_bench: ok" in out


def test_selected_names_only(fake_benches: list[str]) -> None:
    assert runner.main(["wire_bench"]) == 0
    assert fake_benches == ["wire:[]"]


def test_unknown_name(fake_benches: list[str]) -> None:
    assert runner.main(["nope"]) == 2
