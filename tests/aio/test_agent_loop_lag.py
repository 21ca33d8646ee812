"""Loop-lag local health: a node whose event loop is blocked stops accusing healthy peers.

Setup, run twice side by side: three healthy agents on the test's event loop and
one "stalled" agent on its own loop in a thread, where a task blocks the loop
with `time.sleep(0.5)` again and again, yielding only once in between (a host
application hogging its loop). A healthy peer also sends the stalled agent a
light stream of best-effort user messages, standing in for the traffic of a
busy cluster, so that after each stall there is a backlog in its socket.

Why plain Lifeguard accuses: asyncio reads one datagram per loop iteration and
runs overdue timers in the same iteration, so after a stall the probe deadlines
fire while the ack sits unread behind the backlog. With loop-lag health the
driver reports the timer's lateness first, the core pushes the in-flight probe
and suspicion deadlines back by the stall and raises the health score, and the
stalled node suspects nobody.

Stalls (0.5 s) are long against the local profile's probe timeout (0.2 s) and
interval (1 s); plain Lifeguard accused a healthy peer at about 3.5 s in every
trial, so 6 s of stalling gives a wide margin.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.protocol.events import MemberFailed, MemberSuspected
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STALL = 0.5
STALL_FOR = 6.0
FLOOD_PER_S = 50


class StalledAgent(threading.Thread):
    """An agent on its own event loop, blocked by a misbehaving task."""

    def __init__(self, seed: Address, loop_lag_health: bool) -> None:
        super().__init__(daemon=True)
        self.seed = seed
        self.config = Config.local(loop_lag_health=loop_lag_health)
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.address: Address | None = None
        self.accusations: list[tuple[str, str]] = []
        self.stalls_reported = 0
        self.health_score = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by the test
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        built: list[Node] = []

        def node_factory(config: Config, **kwargs: Any) -> Node:
            built.append(Node(config, **kwargs))  # kept to read its stall count at the end
            return built[-1]

        async with Agent("stalled", config=self.config, serf_compat=False,
                         node_factory=node_factory) as agent:
            await agent.join([self.seed])
            self.address = agent.advertise_address
            watcher = asyncio.create_task(self._watch(agent))
            self.ready.set()
            while not self.stop.is_set():
                time.sleep(STALL)  # noqa: ASYNC251 - the point: block the loop
                await asyncio.sleep(0)
            self.health_score = agent.health_score
            self.stalls_reported = built[-1].stalls
            watcher.cancel()

    async def _watch(self, agent: Agent) -> None:
        async for event in agent.events():
            if isinstance(event, MemberSuspected | MemberFailed):
                self.accusations.append((type(event).__name__, event.member.name))


async def run_cluster(loop_lag_health: bool) -> dict[str, Any]:
    healthy = [
        Agent(f"healthy{i}", config=Config.local(), serf_compat=False) for i in range(3)
    ]
    for agent in healthy:
        await agent.start()
    stalled: StalledAgent | None = None
    try:
        for agent in healthy[1:]:
            await agent.join([healthy[0].advertise_address])
        stalled = StalledAgent(healthy[0].advertise_address, loop_lag_health)
        stalled.start()
        await asyncio.to_thread(stalled.ready.wait, 20)
        assert stalled.error is None, stalled.error
        assert stalled.address is not None
        end = time.monotonic() + STALL_FOR
        while time.monotonic() < end:
            healthy[1].send_best_effort(stalled.address, b"busy cluster traffic")
            await asyncio.sleep(1 / FLOOD_PER_S)
        stalled.stop.set()
        await asyncio.to_thread(stalled.join, 20)
        healthy_names = {a.name for a in healthy}
        return {
            "accused_healthy": [a for a in stalled.accusations if a[1] in healthy_names],
            "healthy_failed": [
                (a.name, m.name)
                for a in healthy
                for m in a.members()
                if m.name in healthy_names and m.state.name == "DEAD"
            ],
            "stalls_reported": stalled.stalls_reported,
            "health_score": stalled.health_score,
        }
    finally:
        if stalled is not None:
            stalled.stop.set()
        for agent in healthy:
            await agent.close()


def test_stalled_loop_accuses_nobody_with_loop_lag_health_but_does_without() -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        with_lag, plain = await asyncio.gather(run_cluster(True), run_cluster(False))
        return with_lag, plain

    with_lag, plain = asyncio.run(main())

    # Plain Lifeguard: the stalled node accuses healthy peers.
    assert plain["accused_healthy"], plain
    assert plain["stalls_reported"] == 0
    # Loop-lag health: it noticed its stalls and accused no one.
    assert with_lag["accused_healthy"] == [], with_lag
    assert with_lag["stalls_reported"] > 0
    assert with_lag["health_score"] > 0
    assert with_lag["healthy_failed"] == []
