"""Retransmit-limited broadcast queue (memberlist `queue.go`, `TransmitLimitedQueue`).

Order of preference when filling a packet: fewest transmissions first, then the
longest message that still fits, then the newest. A broadcast is dropped after
`retransmit_mult * ceil(log10(n + 1))` transmissions. A *named* broadcast
replaces a queued one with the same name (memberlist invalidates member messages
by node name this way); an unnamed one is unique and replaces nothing.

Entries are kept per transmit count in lists sorted by ascending (length, id, -serial), so
the preferred entry of a tier is the *last* one: taking it is a pop from the end, and
picking "the longest that fits" is one bisection, with no scan of the whole queue.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from swimguard.protocol.scaling import retransmit_limit

__all__ = ["Broadcast", "BroadcastQueue"]

_MAX_KEY = 1 << 63
# One bucket entry: (len(msg), id, -serial, broadcast); the serial is unique, so a
# comparison never reaches the broadcast.
_Entry = tuple[int, int, int, "Broadcast"]


class Broadcast:
    """One queued message."""

    __slots__ = ("id", "msg", "name", "on_finished", "serial", "transmits")

    def __init__(
        self,
        msg: bytes,
        name: str | None,
        transmits: int,
        id_: int,
        on_finished: Callable[[], None] | None,
        serial: int,
    ) -> None:
        self.serial = serial
        self.msg = msg
        self.name = name
        self.transmits = transmits
        self.id = id_
        self.on_finished = on_finished

    @property
    def key(self) -> _Entry:
        """Sort entry inside one transmit-count bucket (serial: unique, as ids restart at 1)."""
        return (len(self.msg), self.id, -self.serial, self)

    def finish(self) -> None:
        """Run the completion callback once (sent enough times, replaced or pruned)."""
        callback, self.on_finished = self.on_finished, None
        if callback is not None:
            callback()


class BroadcastQueue:
    """A retransmit-limited queue of encoded messages."""

    __slots__ = ("_buckets", "_by_name", "_by_serial", "_serial", "id_gen", "retransmit_mult")

    def __init__(self, retransmit_mult: int) -> None:
        self.retransmit_mult = retransmit_mult
        self._buckets: dict[int, list[_Entry]] = {}
        self._by_serial: dict[int, Broadcast] = {}
        self._serial = 0
        self._by_name: dict[str, Broadcast] = {}
        self.id_gen = 0

    def __len__(self) -> int:
        return len(self._by_serial)

    def messages(self) -> Iterator[bytes]:
        """Every queued message, in no particular order (for inspection: metrics)."""
        return (item.msg for item in self._by_serial.values())

    def queue(
        self,
        msg: bytes,
        *,
        name: str | None = None,
        on_finished: Callable[[], None] | None = None,
        transmits: int = 0,
    ) -> None:
        """Queue `msg`; a named message replaces (and finishes) the queued one of that name."""
        self.id_gen = 1 if self.id_gen >= (1 << 63) - 1 else self.id_gen + 1
        self._serial += 1
        item = Broadcast(msg, name, transmits, self.id_gen, on_finished, self._serial)
        if name is not None:
            old = self._by_name.get(name)
            if old is not None:
                old.finish()
                self._delete(old)
        self._add(item)

    def get_broadcasts(
        self, overhead: int, limit: int, num_nodes: int, max_count: int = 255
    ) -> list[bytes]:
        """Messages to piggyback, each costing `overhead + len`, within `limit` bytes."""
        by_serial = self._by_serial
        if not by_serial:
            return []
        transmit_limit = retransmit_limit(self.retransmit_mult, num_nodes)
        buckets = self._buckets
        room = limit - overhead  # the free space is `room - used`
        used = 0
        count = 0
        out: list[bytes] = []
        append = out.append
        # Entries taken from tier L move to tier L+1 after the walk (as in Go), so they
        # are not picked twice; each tier yields them in descending key order.
        moved: list[tuple[int, list[_Entry]]] = []
        for level in sorted(buckets):
            bucket = buckets[level]
            next_level = level + 1
            final = next_level >= transmit_limit
            taken: list[_Entry] = []
            while count < max_count:
                free = room - used
                if free <= 0:
                    break
                if bucket[-1][0] <= free:
                    entry = bucket.pop()  # the longest one fits: the common case
                else:
                    i = bisect.bisect_right(bucket, (free, _MAX_KEY))
                    if i == 0:
                        break
                    entry = bucket.pop(i - 1)
                item = entry[3]
                used += overhead + entry[0]
                count += 1
                append(item.msg)
                if final:
                    del by_serial[-entry[2]]
                    if item.name is not None and self._by_name.get(item.name) is item:
                        del self._by_name[item.name]
                    item.finish()
                else:
                    item.transmits = next_level
                    taken.append(entry)
                if not bucket:
                    del buckets[level]
                    break
            if taken:
                moved.append((next_level, taken))
            if room - used <= 0 or count >= max_count:
                break
        for level, taken in moved:
            taken.reverse()  # now ascending
            target = buckets.get(level)
            if target is None:
                buckets[level] = taken
            elif taken[0] > target[-1]:
                target.extend(taken)
            else:
                lo = 0
                for entry in taken:  # ascending, so each goes at or after the previous one
                    lo = bisect.bisect_right(target, entry, lo)
                    target.insert(lo, entry)
                    lo += 1
        if not by_serial:
            self.id_gen = 0
        return out

    def prune(self, max_retain: int) -> None:
        """Drop the most-transmitted (then shortest, oldest) messages until `max_retain` remain."""
        while len(self._by_serial) > max_retain:
            item = self._buckets[max(self._buckets)][0][3]
            item.finish()
            self._delete(item)

    def reset(self) -> None:
        """Finish and drop everything."""
        for item in list(self._by_serial.values()):
            item.finish()
        self._buckets.clear()
        self._by_serial.clear()
        self._by_name.clear()
        self.id_gen = 0

    def ordered(self) -> list[Broadcast]:
        """All entries in preference order (first = sent first). For tests and inspection."""
        return sorted(self._by_serial.values(), key=lambda b: (b.transmits, -len(b.msg), -b.id))

    def _add(self, item: Broadcast) -> None:
        bisect.insort(self._buckets.setdefault(item.transmits, []), item.key)
        self._by_serial[item.serial] = item
        if item.name is not None:
            self._by_name[item.name] = item

    def _delete(self, item: Broadcast) -> None:
        bucket = self._buckets[item.transmits]
        i = bisect.bisect_left(bucket, (len(item.msg), item.id, -item.serial))
        del bucket[i]
        if not bucket:
            del self._buckets[item.transmits]
        del self._by_serial[item.serial]
        if item.name is not None and self._by_name.get(item.name) is item:
            del self._by_name[item.name]
        if not self._by_serial:
            self.id_gen = 0
