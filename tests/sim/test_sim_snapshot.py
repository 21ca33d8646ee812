"""Snapshots in the simulator: a crashed `SerfNode` restarted from its snapshot lines.

The agent's `PersistenceWatch` is I/O around two pure parts, `SnapshotRecorder` (what to
write) and `SerfLayer.restore_clocks` (what a restart resumes from); here a listener plays
the watch, keeping each member's lines in memory, so the restart rule runs on virtual
time. The control run (no restored clocks) shows what the snapshot prevents: the rejoin's
push/pull delivers the old user event a second time.
"""

from __future__ import annotations

import random

import pytest
from sim_helpers import replay

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI
from swimguard.protocol.events import MemberFailed, MemberJoined, MemberLeft
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.serf import UserEventReceived
from swimguard.serf.node import SerfNode
from swimguard.serf.snapshot import SnapshotRecorder
from swimguard.sim.cluster import SimCluster, SimMember


class SnapshotKeeper:
    """Each member's snapshot lines, written as the agent's watch writes them."""

    def __init__(self) -> None:
        self.recorders: dict[str, SnapshotRecorder] = {}
        self.lines: dict[str, list[str]] = {}
        self.user_events: list[tuple[float, str, str]] = []

    def on_events(self, now: float, member: SimMember, events: list[object], cause: str) -> None:
        node = member.node
        assert isinstance(node, SerfNode)
        rec = self.recorders.setdefault(member.name, SnapshotRecorder())
        out = self.lines.setdefault(member.name, [])
        clock = node.serf.member_clock.time()
        for e in events:
            if isinstance(e, MemberJoined):
                out += rec.on_alive(e.member.name, *e.member.addr, member_clock=clock)
            elif isinstance(e, MemberLeft | MemberFailed):
                out += rec.on_not_alive(e.member.name, member_clock=clock)
            elif isinstance(e, UserEventReceived):
                self.user_events.append((now, member.name, e.name))
        out += rec.on_clock(clock)
        out += rec.on_user_event(node.serf.last_event_ltime)
        out += rec.on_query(node.serf.last_query_ltime)

    def read_back(self, name: str) -> SnapshotRecorder:
        """The state a restarted member reads from its file."""
        rec = SnapshotRecorder()
        rec.replay(line.encode() for line in self.lines[name])
        return rec


@pytest.mark.parametrize("restore", [True, False])
def test_restarted_member_resumes_its_clocks_and_rejoins_without_replay(
    restore: bool, sim_seed: int
) -> None:
    config = Config.lan()
    restored: dict[str, SnapshotRecorder] = {}

    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        node = SerfNode(config, name=name, advertise=addr, rng=rng, now=now)
        rec = restored.get(name)
        if rec is not None:
            node.serf.restore_clocks(rec.last_clock, rec.last_event_clock, rec.last_query_clock)
        return node  # type: ignore[return-value]

    c = SimCluster(make, seed=sim_seed, replay_hint=replay("test_sim_snapshot.py", sim_seed))
    keeper = SnapshotKeeper()
    c.add_listener(keeper)
    names = [f"n{i}" for i in range(4)]
    c.add_member(names[0])
    for name in names[1:]:
        c.add_member(name, [names[0]])
    c.run_for(20.0)
    c.call("n0", lambda node, now: node.user_event("old", b"1", now=now))  # type: ignore[attr-defined]
    c.run_for(10.0)
    assert [e for _, who, e in keeper.user_events if who == "n3"] == ["old"]

    c.crash("n3")
    c.run_for(30.0)
    rec = keeper.read_back("n3")
    assert {n for n, _ in rec.alive_members(exclude="n3")} == {"n0", "n1", "n2"}
    assert rec.last_event_clock >= 1
    if restore:
        restored["n3"] = rec
    seeds = [c.by_addr[addr].name for _, addr in rec.alive_members(exclude="n3")]
    restarted_at = c.now
    c.restart("n3", seeds[:1])  # Serf's rejoin: the first remembered member that answers
    c.run_for(30.0)
    assert all(c.view(n)["n3"].state is MemberState.ALIVE for n in names[:3])
    c.call("n1", lambda node, now: node.user_event("new", b"2", now=now))  # type: ignore[attr-defined]
    c.run_for(10.0)
    after = [e for t, who, e in keeper.user_events if who == "n3" and t >= restarted_at]
    node = c.member("n3").node
    assert isinstance(node, SerfNode)
    if restore:
        assert after == ["new"]
        assert node.serf.drops["event_before_restart"] >= 1
    else:  # the control: without the snapshot's clocks, the join replays "old"
        assert after == ["old", "new"]
