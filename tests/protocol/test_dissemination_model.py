"""BroadcastQueue against a plain sort-everything model of memberlist's TransmitLimitedQueue.

The queue keeps per-tier sorted buckets for speed; the model re-sorts the whole queue on
every pick, as `queue.go`'s btree order reads: fewest transmits, then longest that fits,
then newest id. Random operation sequences must give the same packets, the same finished
callbacks and the same queue order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from swimguard.protocol.dissemination import BroadcastQueue


@dataclass
class _Item:
    msg: bytes
    name: str | None
    transmits: int
    id: int
    serial: int


@dataclass
class _Model:
    mult: int
    items: list[_Item] = field(default_factory=list)
    id_gen: int = 0
    serial: int = 0
    finished: list[bytes] = field(default_factory=list)

    def _remove(self, item: _Item) -> None:
        self.items.remove(item)
        if not self.items:
            self.id_gen = 0

    def queue(self, msg: bytes, name: str | None, transmits: int) -> None:
        self.id_gen += 1
        self.serial += 1
        item = _Item(msg, name, transmits, self.id_gen, self.serial)  # id taken first, as in Go
        if name is not None:
            for old in [i for i in self.items if i.name == name]:
                self.finished.append(old.msg)
                self._remove(old)
        self.items.append(item)

    def get(self, overhead: int, limit: int, n: int, max_count: int) -> list[bytes]:
        if not self.items:
            return []
        tlimit = self.mult * math.ceil(math.log10(n + 1))
        out: list[bytes] = []
        used = 0
        reinsert: list[_Item] = []
        for tier in range(
            min(i.transmits for i in self.items), 1 + max(i.transmits for i in self.items)
        ):
            while len(out) < max_count and limit - used - overhead > 0:
                free = limit - used - overhead
                fits = [i for i in self.items if i.transmits == tier and len(i.msg) <= free]
                if not fits:
                    break
                keep = min(fits, key=lambda i: (-len(i.msg), -i.id, i.serial))
                self.items.remove(keep)
                used += overhead + len(keep.msg)
                out.append(keep.msg)
                if tier + 1 >= tlimit:
                    self.finished.append(keep.msg)
                else:
                    keep.transmits += 1
                    reinsert.append(keep)
            if limit - used - overhead <= 0 or len(out) >= max_count:
                break
        self.items.extend(reinsert)
        if not self.items:
            self.id_gen = 0
        return out

    def prune(self, keep: int) -> None:
        while len(self.items) > keep:
            worst = max(self.items, key=lambda i: (i.transmits, -len(i.msg), -i.id, i.serial))
            self.finished.append(worst.msg)
            self._remove(worst)

    def order(self) -> list[bytes]:
        ranked = sorted(self.items, key=lambda i: (i.transmits, -len(i.msg), -i.id, i.serial))
        return [i.msg for i in ranked]


@dataclass(frozen=True)
class _Queue:
    size: int
    name: str | None
    transmits: int


@dataclass(frozen=True)
class _Get:
    overhead: int
    limit: int
    n: int
    max_count: int


@dataclass(frozen=True)
class _Prune:
    keep: int


# Small sizes and limits, so exact fits and equal lengths (the tie-breaks) are common.
_OPS = st.lists(
    st.one_of(
        st.builds(
            _Queue,
            st.integers(1, 12),
            st.one_of(st.none(), st.sampled_from("abcdef")),
            st.integers(0, 3),
        ),
        st.builds(
            _Get, st.integers(0, 3), st.integers(0, 60), st.integers(1, 50), st.integers(1, 8)
        ),
        st.builds(_Prune, st.integers(0, 6)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(mult=st.integers(1, 4), ops=_OPS)
def test_queue_matches_the_memberlist_order_model(
    mult: int, ops: list[_Queue | _Get | _Prune]
) -> None:
    q = BroadcastQueue(mult)
    model = _Model(mult)
    finished: list[bytes] = []
    for counter, op in enumerate(ops):
        if isinstance(op, _Queue):
            msg = str(counter).encode().ljust(op.size, b".")  # unique, at least `size` long
            q.queue(
                msg,
                name=op.name,
                transmits=op.transmits,
                on_finished=lambda m=msg: finished.append(m),
            )
            model.queue(msg, op.name, op.transmits)
        elif isinstance(op, _Get):
            got = q.get_broadcasts(op.overhead, op.limit, op.n, op.max_count)
            assert got == model.get(op.overhead, op.limit, op.n, op.max_count)
        else:
            q.prune(op.keep)
            model.prune(op.keep)
        assert finished == model.finished
        assert [b.msg for b in q.ordered()] == model.order()
        assert len(q) == len(model.items)
        assert q.id_gen == model.id_gen
