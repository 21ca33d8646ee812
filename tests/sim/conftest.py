"""Simulation tests: a seed fixture (overridable for replays) and a failure banner."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def sim_seed() -> int:
    """The seed of this test's simulation; SWIMGUARD_SIM_SEED replays another one."""
    return int(os.environ.get("SWIMGUARD_SIM_SEED", "1"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "sim_seed" in getattr(item, "funcargs", {}):
        seed = item.funcargs["sim_seed"]
        report.sections.append(
            (
                "simulation replay",
                f"seed={seed}\nreplay: SWIMGUARD_SIM_SEED={seed} .venv/bin/python -m pytest -q "
                f"'{item.nodeid}'",
            )
        )
