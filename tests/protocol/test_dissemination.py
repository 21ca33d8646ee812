"""memberlist queue_test.go, ported to BroadcastQueue."""

from __future__ import annotations

from swimguard.protocol.dissemination import BroadcastQueue


def _names(q: BroadcastQueue, reverse: bool = True) -> list[str | None]:
    order = q.ordered()
    return [b.name for b in (reversed(order) if reverse else order)]


def test_named_broadcast_replaces_and_order() -> None:
    q = BroadcastQueue(1)
    for name in ("test", "foo", "bar"):
        q.queue(b"", name=name)
    assert len(q) == 3
    assert _names(q) == ["test", "foo", "bar"]  # Go orderedView(reverse): oldest first
    q.queue(b"", name="test")
    assert len(q) == 3
    assert _names(q) == ["foo", "bar", "test"]


def test_replacement_finishes_the_old_broadcast() -> None:
    q = BroadcastQueue(1)
    done: list[str] = []
    q.queue(b"a", name="n", on_finished=lambda: done.append("old"))
    q.queue(b"b", name="n", on_finished=lambda: done.append("new"))
    assert done == ["old"]
    assert [b.msg for b in q.ordered()] == [b"b"]


def test_get_broadcasts_respects_limit_and_overhead() -> None:
    q = BroadcastQueue(3)
    for i, name in enumerate(("test", "foo", "bar", "baz"), 1):
        q.queue(f"{i}. this is a test.".encode(), name=name)
    assert len(q.get_broadcasts(2, 80, 10)) == 4
    assert len(q.get_broadcasts(3, 80, 10)) == 3


def test_get_broadcasts_transmit_limit_and_id_reset() -> None:
    q = BroadcastQueue(1)
    assert q.id_gen == 0
    for i, name in enumerate(("test", "foo", "bar", "baz"), 1):
        q.queue(f"{i}. this is a test.".encode(), name=name)
    assert q.id_gen == 4
    assert len(q.get_broadcasts(3, 80, 10)) == 3
    assert q.id_gen == 4
    assert len(q.get_broadcasts(3, 80, 10)) == 3
    assert q.id_gen == 4
    assert len(q.get_broadcasts(3, 80, 10)) == 2
    assert q.id_gen == 0
    assert q.get_broadcasts(3, 80, 10) == []
    assert q.id_gen == 0


def test_prune_drops_most_transmitted_and_finishes() -> None:
    q = BroadcastQueue(1)
    done: list[str] = []
    q.queue(b"1. this is a test.", name="test", on_finished=lambda: done.append("test"))
    q.queue(b"2. this is a test.", name="foo", on_finished=lambda: done.append("foo"))
    q.queue(b"3. this is a test.", name="bar")
    q.queue(b"4. this is a test.", name="baz")
    q.prune(2)
    assert len(q) == 2
    assert sorted(done) == ["foo", "test"]
    assert _names(q) == ["bar", "baz"]


def test_ordering_by_transmits() -> None:
    q = BroadcastQueue(1)
    for name, transmits in (("node0", 0), ("node1", 10), ("node2", 3), ("node3", 4),
                            ("node4", 7)):
        q.queue(name.encode(), name=name, transmits=transmits)
    assert [b.transmits for b in reversed(q.ordered())] == [10, 7, 4, 3, 0]


def test_longest_that_fits_first_then_newest() -> None:
    q = BroadcastQueue(4)
    q.queue(b"x" * 10, name="a")
    q.queue(b"y" * 30, name="b")
    q.queue(b"z" * 10, name="c")
    # 30 fits first, then among equal lengths the newest ("c").
    assert q.get_broadcasts(0, 100, 1) == [b"y" * 30, b"z" * 10, b"x" * 10]
    # A tight limit skips the long one and takes a short one.
    assert q.get_broadcasts(0, 15, 1) == [b"z" * 10]


def test_each_message_sent_at_most_limit_times_and_then_finished() -> None:
    q = BroadcastQueue(2)  # n=9 -> limit 2
    done: list[bool] = []
    q.queue(b"m", on_finished=lambda: done.append(True))
    sent = 0
    while q.get_broadcasts(2, 100, 9):
        sent += 1
    assert sent == 2
    assert done == [True]


def test_unnamed_broadcasts_are_unique() -> None:
    q = BroadcastQueue(1)
    q.queue(b"a")
    q.queue(b"a")
    assert len(q) == 2


def test_max_count_caps_the_number_of_parts() -> None:
    q = BroadcastQueue(4)
    for i in range(300):
        q.queue(b"p", name=str(i))
    assert len(q.get_broadcasts(2, 10_000, 10, max_count=254)) == 254


def test_reset_finishes_everything() -> None:
    q = BroadcastQueue(1)
    done: list[int] = []
    q.queue(b"a", on_finished=lambda: done.append(1))
    q.queue(b"b", name="x", on_finished=lambda: done.append(2))
    q.reset()
    assert len(q) == 0
    assert sorted(done) == [1, 2]
    assert q.id_gen == 0
