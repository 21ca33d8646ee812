"""Serf queries and name conflicts through whole `SerfNode`s in the simulator (issue 12).

The members answer what they receive the way an application would: a listener sees each
`QueryReceived` and schedules `SerfNode.respond` at the same virtual instant, so the
answer goes out through the driver contract like any other input. Filters are evaluated
by each receiver against its own tags; relays and the conflict vote are the nodes' own
behaviour, the simulator only delivers (or loses) datagrams.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Mapping, Sequence

import pytest
from sim_helpers import replay
from test_sim_serf import Log, serf_of

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI, NodeFactory
from swimguard.protocol.events import MemberFailed, MemberLeft
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.serf import (
    NameConflictResolved,
    QueryAckReceived,
    QueryEnd,
    QueryFinished,
    QueryParams,
    QueryReceived,
    QueryResponseReceived,
)
from swimguard.serf.messages import QueryFlag, QueryResponse
from swimguard.serf.node import SerfNode
from swimguard.sim.cluster import SimCluster, SimMember, address_for
from swimguard.sim.invariants import attach_all, check_converged
from swimguard.sim.network import LinkModel
from swimguard.sim.scenarios import start_cluster

TEST = "test_sim_queries.py"


def tags_for(name: str) -> dict[str, str]:
    """m0..m9: even members are "web", odd ones "db"; zones a, b, c in turn."""
    index = int(name[1:])
    return {"role": "web" if index % 2 == 0 else "db", "zone": "abc"[index % 3]}


def tagged_factory(
    config: Config, tags: Mapping[str, dict[str, str]] | None = None, *, as_name: str | None = None
) -> NodeFactory:
    """SerfNodes with Serf tags; `as_name` runs the node under another name than its slot's."""

    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        own = as_name or name
        node: NodeAPI = SerfNode(  # type: ignore[assignment]
            config,
            name=own,
            advertise=addr,
            rng=rng,
            now=now,
            tags=(tags or {}).get(own, {}),
        )
        return node

    return make


class Responder:
    """Answers every non-internal `QueryReceived` with the member's name, as an app would."""

    def __init__(self, c: SimCluster) -> None:
        self.c = c
        self.answered: list[str] = []

    def on_events(
        self, now: float, member: SimMember, events: Sequence[object], cause: str
    ) -> None:
        for e in events:
            if isinstance(e, QueryReceived) and not e.query.name.startswith("_serf_"):
                # Not from inside the drain: the answer is a new input, run at this instant.
                self.c.at(now, self._respond, member.name, e)

    def _respond(self, name: str, received: QueryReceived) -> None:
        def answer(node: NodeAPI, now: float) -> None:
            assert isinstance(node, SerfNode)
            node.respond(received.query, name.encode(), now=now)
            self.answered.append(name)

        self.c.call(name, answer)


def query_cluster(
    n: int, seed: int, *, link: LinkModel | None = None
) -> tuple[SimCluster, Log, Responder]:
    config = Config.lan()
    tags = {f"m{i}": tags_for(f"m{i}") for i in range(n)}
    c = start_cluster(
        n,
        seed=seed,
        factory=tagged_factory(config, tags),
        link=link,
        settle=30.0,
        replay_hint=replay(TEST, seed),
    )
    attach_all(c, config.gossip_to_the_dead_time)
    log = Log()
    responder = Responder(c)
    c.add_listener(log)
    c.add_listener(responder)
    return c, log, responder


def originate(c: SimCluster, origin: str, name: str, params: QueryParams) -> int:
    handles: list[int] = []

    def send(node: NodeAPI, now: float) -> None:
        assert isinstance(node, SerfNode)
        handles.append(node.query(name, b"who", params, now=now))

    c.call(origin, send)
    (handle,) = handles
    return handle


def receivers(c: SimCluster, log: Log, query_name: str) -> set[str]:
    return {
        m.name
        for m in c.live()
        for e in log.seen_by(m.name, QueryReceived)
        if e.query.name == query_name  # type: ignore[attr-defined]
    }


def answers(log: Log, origin: str, kind: type, handle: int) -> list[str]:
    return [e.from_ for e in log.seen_by(origin, kind) if e.ltime == handle]  # type: ignore[attr-defined]


def finished(log: Log, origin: str, handle: int) -> list[tuple[float, QueryEnd]]:
    return [
        (t, e.reason)
        for t, who, e in log.rows
        if who == origin and isinstance(e, QueryFinished) and e.ltime == handle
    ]


def test_a_node_filter_reaches_exactly_the_named_members_and_ends_early() -> None:
    c, log, responder = query_cluster(10, 41)
    start = c.now
    wanted = {"m2", "m5", "m7"}
    params = QueryParams(filter_nodes=tuple(sorted(wanted)), request_ack=True, timeout=10.0)
    handle = originate(c, "m0", "who-nodes", params)
    c.run_for(15.0)
    assert receivers(c, log, "who-nodes") == wanted
    assert sorted(responder.answered) == sorted(wanted)  # each answered once
    assert sorted(answers(log, "m0", QueryAckReceived, handle)) == sorted(wanted)
    assert sorted(answers(log, "m0", QueryResponseReceived, handle)) == sorted(wanted)
    payloads = {e.from_: e.payload for e in log.seen_by("m0", QueryResponseReceived)}  # type: ignore[attr-defined]
    assert payloads == {n: n.encode() for n in wanted}
    ((at, reason),) = finished(log, "m0", handle)
    assert reason is QueryEnd.ALL_ANSWERED
    assert at < start + 10.0  # before the deadline: the last named member answered
    # The others only re-gossiped it: a well-formed filter that does not name them is
    # not for them, which is not the same as a malformed one (counted as a drop).
    dropped = sum(serf_of(c, m.name).drops.get("serf_query_filter", 0) for m in c.live())
    assert dropped == 0


def test_a_tag_filter_reaches_exactly_the_matching_members() -> None:
    c, log, _ = query_cluster(10, 42)
    start = c.now
    # RE2, unanchored as in Serf: "^w.b$" matches "web" only; "[ab]" zones a and b.
    params = QueryParams(filter_tags={"role": "^w.b$", "zone": "[ab]"}, expected=3, timeout=10.0)
    matching = {
        f"m{i}"
        for i in range(10)
        if tags_for(f"m{i}")["role"] == "web" and tags_for(f"m{i}")["zone"] in "ab"
    }
    assert matching == {"m0", "m4", "m6"}  # the originator m1 does not match itself
    handle = originate(c, "m1", "who-tags", params)
    c.run_for(15.0)
    assert receivers(c, log, "who-tags") == matching
    assert sorted(answers(log, "m1", QueryResponseReceived, handle)) == sorted(matching)
    assert answers(log, "m1", QueryAckReceived, handle) == []  # no ack was asked for
    ((at, reason),) = finished(log, "m1", handle)
    assert reason is QueryEnd.ALL_ANSWERED
    assert at < start + 10.0


def test_without_expected_responders_a_query_runs_to_its_deadline() -> None:
    c, log, _ = query_cluster(10, 43)
    start = c.now
    handle = originate(c, "m3", "who-db", QueryParams(filter_tags={"role": "db"}, timeout=4.0))
    c.run_for(6.0)
    assert sorted(answers(log, "m3", QueryResponseReceived, handle)) == [
        "m1",
        "m3",
        "m5",
        "m7",
        "m9",
    ]
    ((at, reason),) = finished(log, "m3", handle)
    assert reason is QueryEnd.DEADLINE
    assert at >= start + 4.0


def _count_book_calls(node: SerfNode) -> collections.Counter[str]:
    """How many responses (not acks) reached the originator's book per responder, before
    its dedup."""
    calls: collections.Counter[str] = collections.Counter()
    book = node.serf.originated
    inner = book.on_response

    def counting(msg: QueryResponse, *, now: float) -> list[object]:
        if not msg.flags & QueryFlag.ACK:
            calls[msg.from_] += 1
        return inner(msg, now=now)  # type: ignore[return-value]

    book.on_response = counting  # type: ignore[method-assign,assignment]
    return calls


def lossy_query(seed: int, relay_factor: int) -> tuple[list[str], collections.Counter[str]]:
    """Every "web" member answers m1 across a 70 %-loss link to it; the rest is clean."""
    c, log, _ = query_cluster(10, seed)
    origin = c.member("m1").index
    web = [m for m in c.live() if tags_for(m.name)["role"] == "web"]
    for m in web:
        c.network.set_link(m.index, origin, LinkModel(loss=0.7))
    calls = _count_book_calls(serf_of(c, "m1"))
    params = QueryParams(filter_tags={"role": "web"}, relay_factor=relay_factor, timeout=5.0)
    handle = originate(c, "m1", "who-web", params)
    c.run_for(6.0)
    assert receivers(c, log, "who-web") == {m.name for m in web}
    return answers(log, "m1", QueryResponseReceived, handle), calls


SEEDS = (51, 52, 53, 54)


def test_relays_deliver_responses_a_lossy_direct_path_loses() -> None:
    plain = [lossy_query(seed, 0) for seed in SEEDS]
    relayed = [lossy_query(seed, 2) for seed in SEEDS]
    got_plain = sum(len(got) for got, _ in plain)
    got_relayed = sum(len(got) for got, _ in relayed)
    total = 5 * len(SEEDS)
    # The control: without relays the lossy path really loses answers...
    assert got_plain < total
    # ...and relays (mostly through "db" members, whose links to m1 are clean) bring
    # most of them back.
    assert got_relayed > got_plain
    for got, calls in plain + relayed:
        assert len(got) == len(set(got))  # each responder counted once
        assert set(got) <= set(calls)
    # Relays make duplicates the normal case: they reached the book and were dropped there.
    assert sum(calls.total() - len(calls) for _, calls in relayed) > 0
    assert all(calls.total() == len(calls) for _, calls in plain)


def test_relays_duplicate_every_response_yet_each_is_counted_once() -> None:
    c, log, _ = query_cluster(10, 55)
    calls = _count_book_calls(serf_of(c, "m0"))
    params = QueryParams(filter_tags={"zone": "c"}, relay_factor=2, expected=3, timeout=5.0)
    handle = originate(c, "m0", "who-c", params)
    c.run_for(6.0)
    got = answers(log, "m0", QueryResponseReceived, handle)
    assert sorted(got) == ["m2", "m5", "m8"]
    ((_, reason),) = finished(log, "m0", handle)
    assert reason is QueryEnd.ALL_ANSWERED
    # On a clean network a responder's direct copy and its relayed copies all arrive
    # (those after the early finish are unknown to the book, so counted as such).
    assert sum(calls.values()) > len(got)


def test_under_general_loss_acks_and_responses_stay_single_and_the_query_ends_once() -> None:
    c, log, _ = query_cluster(10, 56, link=LinkModel(loss=0.1))
    calls = _count_book_calls(serf_of(c, "m4"))
    params = QueryParams(request_ack=True, relay_factor=2, timeout=5.0)
    handle = originate(c, "m4", "who-all", params)
    c.run_for(6.0)
    heard = receivers(c, log, "who-all")
    acks = answers(log, "m4", QueryAckReceived, handle)
    got = answers(log, "m4", QueryResponseReceived, handle)
    assert len(acks) == len(set(acks))
    assert len(got) == len(set(got))
    assert set(acks) <= heard
    assert set(got) <= heard
    assert len(got) >= 8  # at 10 % loss on every link, most answers make it
    assert calls.total() > len(calls)  # relayed duplicates did reach the book
    ((_, reason),) = finished(log, "m4", handle)
    assert reason is QueryEnd.DEADLINE  # no `expected`: it collects until the deadline


class StopOnLostVote:
    """What the `Agent` does with a lost vote: stop at once, without a leave (a leave would
    mark the name, now the other member's, as left everywhere)."""

    def __init__(self, c: SimCluster) -> None:
        self.c = c

    def on_events(
        self, now: float, member: SimMember, events: Sequence[object], cause: str
    ) -> None:
        if any(isinstance(e, NameConflictResolved) and not e.won for e in events):
            self.c.at(now, self.c.crash, member.name)


def conflict_cluster(seed: int, via: str = "m0") -> tuple[SimCluster, Log]:
    """m0..m6 settled, then slot "dup" starts a second "m3" at its own address and joins `via`.

    Joining m0, only the dup votes: peers drop an alive message that claims a known name
    from another address without re-gossiping it, and the dup cannot address the original
    (it holds "m3" as itself), so the original never hears of it. Joining m3 itself, the
    push/pull exchange shows each claimant the other: both vote at the same moment.
    """
    config = Config.lan()
    c = start_cluster(
        7, seed=seed, factory=tagged_factory(config), settle=30.0, replay_hint=replay(TEST, seed)
    )
    attach_all(c, config.gossip_to_the_dead_time)
    log = Log()
    c.add_listener(log)
    c.add_listener(StopOnLostVote(c))
    c.add_member("dup", [via], factory=tagged_factory(config, as_name="m3"))
    c.run_for(30.0)
    return c, log


def resolved(log: Log, slot: str) -> list[NameConflictResolved]:
    return log.seen_by(slot, NameConflictResolved)  # type: ignore[return-value]


@pytest.mark.parametrize("seed", [61, 62])
def test_the_newcomer_with_a_taken_name_loses_the_vote_and_the_cluster_keeps_the_original(
    seed: int,
) -> None:
    c, log = conflict_cluster(seed)
    dup_addr, original_addr = c.member("dup").addr, address_for(3)
    assert dup_addr != original_addr
    assert serf_of(c, "dup").local_member.name == "m3"
    (lost,) = resolved(log, "dup")
    # Everyone but the two claimants answers (they do not vote on their own name), and
    # every one of them knows m3 at the original address.
    assert lost == NameConflictResolved("m3", matching=0, responses=6, won=False)
    assert resolved(log, "m3") == []  # the original never heard of the dup
    assert not c.member("dup").up
    assert c.member("m3").up
    for m in c.live():
        if m.name != "m3":
            known = c.view(m.name)["m3"]
            assert known.addr == original_addr
            assert known.state is MemberState.ALIVE
    # The dup never became anyone's member, so its stop is not a failure of "m3".
    assert not [e for _, _, e in log.rows if isinstance(e, MemberFailed | MemberLeft)]
    check_converged(c)


@pytest.mark.parametrize("seed", [61, 63])
def test_when_both_claimants_vote_everyone_answers_each_and_the_original_wins(seed: int) -> None:
    c, log = conflict_cluster(seed, via="m3")
    # Both votes run at once with the same Lamport time: each must still be a distinct
    # query to the others, or each voter hears only part of the cluster.
    assert resolved(log, "m3") == [NameConflictResolved("m3", matching=6, responses=6, won=True)]
    assert resolved(log, "dup") == [NameConflictResolved("m3", matching=0, responses=6, won=False)]
    assert not c.member("dup").up
    for m in c.live():
        assert c.view(m.name)["m3"].addr == address_for(3)
    check_converged(c)


def test_the_conflict_vote_is_deterministic_for_a_seed() -> None:
    def outcome() -> list[tuple[float, str, object]]:
        _, log = conflict_cluster(63)
        return [row for row in log.rows if isinstance(row[2], NameConflictResolved)]

    first = outcome()
    assert first
    assert first == outcome()
