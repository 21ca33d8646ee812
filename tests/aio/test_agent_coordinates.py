"""`Agent.coordinate()` / `Agent.rtt()` on real loopback sockets."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import pytest

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.serf.coordinate import Coordinate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def until(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    # A guard against hanging, not a timing assertion: the probes decide when it holds.
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_agents_estimate_rtts_between_each_other() -> None:
    asyncio.run(estimate_rtts())


async def estimate_rtts() -> None:
    agents = [Agent(n, bind=("127.0.0.1", 0), config=Config.local()) for n in "abc"]
    for a in agents:
        await a.start()
    try:
        a, b, c = agents
        assert a.coordinate() == Coordinate.origin()
        assert a.rtt("b") is None  # not probed yet
        for other in (b, c):
            await other.join([a.advertise_address])
        await until(lambda: all(x.coordinate(y.name) is not None
                                for x in agents for y in agents))
        for x in agents:
            assert x.coordinate() == x.coordinate(x.name)
            assert x.coordinate() != Coordinate.origin()  # moved by the acks
            for y in agents:
                if y is not x:
                    est = x.rtt(y.name)
                    assert est is not None
                    assert math.isfinite(est)
                    assert est > 0.0
        # Any pair we hold coordinates for, as `serf rtt A B` does.
        between = a.rtt("b", "c")
        assert between is not None
        assert math.isfinite(between)
        assert a.rtt("nobody") is None
        assert a.coordinate("nobody") is None
        assert a.coordinate_resets == 0
        assert not any(k.startswith("serf_coordinate") for k in a.drops)
    finally:
        for x in agents:
            await x.close()


def test_coordinates_need_a_started_serf_agent() -> None:
    asyncio.run(need_serf())


async def need_serf() -> None:
    plain = Agent("p", bind=("127.0.0.1", 0), config=Config.local(), serf_compat=False)
    with pytest.raises(UsageError, match="not started"):
        plain.coordinate()
    async with plain:
        with pytest.raises(UsageError, match="serf_compat"):
            plain.rtt("x")
