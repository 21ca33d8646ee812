"""Shared helpers for simulation tests: cluster builders that print seed and replay on failure."""

from __future__ import annotations

import dataclasses
import os

from swimguard.config import Config
from swimguard.protocol.events import Event
from swimguard.sim.cluster import SimCluster, SimMember
from swimguard.sim.invariants import attach_all
from swimguard.sim.network import LinkModel
from swimguard.sim.scenarios import start_cluster


def replay(test: str, seed: int) -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", f"tests/sim/{test}").split(" ")[0]
    return f"SWIMGUARD_SIM_SEED={seed} .venv/bin/python -m pytest -q '{current}'"


def cluster(
    n: int,
    seed: int,
    test: str,
    config: Config | None = None,
    link: LinkModel | None = None,
    trace: bool = False,
) -> SimCluster:
    """A settled cluster with the event invariants attached."""
    c = start_cluster(
        n,
        seed=seed,
        config=config or Config.lan(),
        link=link,
        settle=30.0,
        trace=trace,
        replay_hint=replay(test, seed),
    )
    attach_all(c, c.members[0].node.config.gossip_to_the_dead_time)  # type: ignore[attr-defined]
    return c


def lan(**changes: object) -> Config:
    return dataclasses.replace(Config.lan(), **changes)  # type: ignore[arg-type]


Row = tuple[float, str, str, str, int, str]


class EventLog:
    """Records (time, observer, event type name, subject, incarnation, cause)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        for e in events:
            subject = getattr(e, "member", None)
            if subject is not None:
                self.rows.append(
                    (now, member.name, type(e).__name__, subject.name, subject.incarnation, cause)
                )

    def of(
        self, kind: str, subject: str | None = None
    ) -> list[tuple[float, str, str, str, int, str]]:
        return [r for r in self.rows if r[2] == kind and (subject is None or r[3] == subject)]
