"""Injected gray failure: while "slow", this agent reads its input late (tests, benchmarks).

Lifeguard is about members that are slow, not dead: their timers fire and their packets
leave on time, but what reaches them is read late. To measure that on real processes,
this layer delays the inbound side of one agent, and only it:

- every received datagram and every accepted TCP connection waits in a FIFO queue (one
  per kind). An item arriving while slow draws a delay d ~ Exp(mean); one arriving while
  not slow draws nothing. It is handed on at max(arrival + d, due time of the item before
  it): never reordered, and the backlog of an episode drains after it ends;
- with `dialed`, the first bytes read on a connection we opened ourselves (the ack of a
  TCP fallback ping, a push/pull reply) wait the same way, in a third queue; without it
  they are on time;
- timers and everything we send are untouched.

Slow episodes follow a schedule drawn from splitmix64 over the seed, in the same order as
mlnode's (tools/mlnode/gray.go), so the same seed gives the same episodes in Go memberlist
and here: the first episode starts at origin + U(0, off_max); each lasts U(on_min, on_max)
seconds and is followed by U(off_min, off_max) seconds of normal service. The queues draw
their delays from their own streams (seed + 1000003 datagrams, + 2000003 accepted streams,
+ 3000003 dialed replies). Each toggle prints a `GRAY` line on stderr, as mlnode does.

Off unless asked for (`AgentConfig.gray_fault`): without it nothing here is even built.
Queues are bounded (items, and bytes for datagrams); what does not fit is dropped and
counted (`gray_queue_full`), and sockets still queued at close are closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import math
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Generic, TextIO, TypeVar

from swimguard.protocol.outgoing import Address

__all__ = [
    "DelayQueue",
    "GrayFault",
    "GrayFaultOptions",
    "QueueStats",
    "SlowSchedule",
    "SplitMix64",
    "Toggle",
]

T = TypeVar("T")

_MASK = (1 << 64) - 1
DATAGRAM_SEED_OFFSET = 1000003
STREAM_SEED_OFFSET = 2000003
DIALED_SEED_OFFSET = 3000003
STATS_PERIOD = 10.0
"""Seconds between two `GRAY <name> stats` lines (mlnode's period)."""
MAX_QUEUED_DATAGRAMS = 1 << 16
"""mlnode's channel capacity; beyond it (or `MAX_QUEUED_BYTES`) datagrams are dropped."""
MAX_QUEUED_BYTES = 64 * 1024 * 1024
MAX_QUEUED_STREAMS = 256
"""Accepted sockets held at once (each holds a file descriptor); more are closed."""


class SplitMix64:
    """splitmix64: tiny, seedable and easy to reproduce bit for bit in any language."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK  # a negative seed wraps as Go's uint64(int64) does

    def next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """Uniform in [0, 1), from the top 53 bits."""
        return (self.next() >> 11) / (1 << 53)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def exponential(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.random())


def _check_range(name: str, value: tuple[float, float]) -> None:
    low, high = value
    if not (0 <= low <= high < math.inf):
        raise ValueError(f"GrayFaultOptions.{name}: want 0 <= MIN <= MAX, got {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GrayFaultOptions:
    """The slow schedule and delays (mlnode's `-slow*` flags, in seconds)."""

    mean: float = 2.0
    """Mean of the exponential delay an item arriving while slow draws."""
    on: tuple[float, float] = (5.0, 60.0)
    """Episode length, uniform in [MIN, MAX] seconds."""
    off: tuple[float, float] = (10.0, 30.0)
    """Gap between episodes, uniform in [MIN, MAX] seconds."""
    seed: int = 1
    at: float | None = None
    """Schedule origin as unix seconds; None: when the agent starts, plus `after`."""
    after: float = 0.0
    dialed: bool = False
    """Also delay the first reply bytes read on connections we dial ourselves."""

    def __post_init__(self) -> None:
        if not (0 <= self.mean < math.inf):
            raise ValueError(f"GrayFaultOptions.mean: want >= 0 seconds, got {self.mean!r}")
        _check_range("on", self.on)
        _check_range("off", self.off)
        if not (0 <= self.after < math.inf):
            raise ValueError(f"GrayFaultOptions.after: want >= 0 seconds, got {self.after!r}")
        if self.at is not None and not (0 < self.at < math.inf):
            raise ValueError(f"GrayFaultOptions.at: want unix seconds > 0, got {self.at!r}")
        if not -(1 << 63) <= self.seed < (1 << 63):
            raise ValueError(f"GrayFaultOptions.seed: want a 64-bit integer, got {self.seed!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Toggle:
    """At `at`, the member turns slow (`slow`) or back, for `length` seconds."""

    at: float
    slow: bool
    length: float


class SlowSchedule:
    """The episodes, drawn lazily in mlnode's order: U(0, off_max), then on, off, on..."""

    def __init__(self, options: GrayFaultOptions, *, origin: float) -> None:
        self._options = options
        self._origin = origin

    def __iter__(self) -> Iterator[Toggle]:
        rng = SplitMix64(self._options.seed)
        (on_min, on_max), (off_min, off_max) = self._options.on, self._options.off
        at = self._origin + rng.uniform(0.0, off_max)
        while True:
            on = rng.uniform(on_min, on_max)
            yield Toggle(at, True, on)
            at += on
            off = rng.uniform(off_min, off_max)
            yield Toggle(at, False, off)
            at += off


@dataclasses.dataclass(slots=True)
class QueueStats:
    """What one queue did (mlnode's counters, printed in the `GRAY` lines)."""

    items: int = 0
    """Items handed on."""
    slow_items: int = 0
    """Items that arrived while slow (and drew a delay)."""
    wait_sum: float = 0.0
    wait_max: float = 0.0
    backlog_max: int = 0
    dropped: int = 0

    def __str__(self) -> str:
        mean = self.wait_sum / self.items if self.items else 0.0
        return (
            f"n={self.items} slow={self.slow_items} wait_mean={mean:.3f}"
            f" wait_max={self.wait_max:.3f} backlog_max={self.backlog_max}"
        )


@dataclasses.dataclass(slots=True)
class _Queued(Generic[T]):
    arrival: float
    due: float
    item: T
    size: int


class DelayQueue(Generic[T]):
    """One FIFO of delayed items; pure (times are passed in), the owner runs the timer."""

    def __init__(
        self, seed: int, mean: float, *, max_items: int, max_bytes: int = 0
    ) -> None:
        self._rng = SplitMix64(seed)
        self._mean = mean
        self._max_items = max_items
        self._max_bytes = max_bytes  # 0: count items only
        self._queue: collections.deque[_Queued[T]] = collections.deque()
        self._bytes = 0
        self._last_due = -math.inf
        self.stats = QueueStats()

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, item: T, *, now: float, slow: bool, size: int = 0) -> bool:
        """Queue `item` arrived at `now`; False (dropped, counted) when the queue is full."""
        if len(self._queue) >= self._max_items or (
            self._max_bytes and self._bytes + size > self._max_bytes
        ):
            self.stats.dropped += 1
            return False
        due = now
        if slow:
            # Only a slow arrival draws, so the draw sequence depends on arrivals alone.
            due = now + self._rng.exponential(self._mean)
            self.stats.slow_items += 1
        due = max(due, self._last_due)
        self._last_due = due
        self._queue.append(_Queued(now, due, item, size))
        self._bytes += size
        self.stats.backlog_max = max(self.stats.backlog_max, len(self._queue))
        return True

    def next_due(self) -> float | None:
        """When the head is due (None: empty)."""
        return self._queue[0].due if self._queue else None

    def pop_due(self, *, now: float) -> T | None:
        """The head if it is due at `now` (counted as handed on), else None."""
        if not self._queue or self._queue[0].due > now:
            return None
        head = self._queue.popleft()
        self._bytes -= head.size
        waited = now - head.arrival
        stats = self.stats
        stats.items += 1
        stats.wait_sum += waited
        stats.wait_max = max(stats.wait_max, waited)
        return head.item

    def clear(self) -> list[T]:
        """Remove and return every queued item (shutdown)."""
        items = [q.item for q in self._queue]
        self._queue.clear()
        self._bytes = 0
        return items


class _Lane(Generic[T]):
    """A `DelayQueue` on the event loop: hands each item to `deliver` when due."""

    def __init__(
        self,
        fault: GrayFault,
        queue: DelayQueue[T],
        deliver: Callable[[T], None],
    ) -> None:
        self._fault = fault
        self.queue = queue
        self._deliver = deliver
        self._timer: asyncio.TimerHandle | None = None

    def push(self, item: T, size: int = 0) -> bool:
        fault = self._fault
        now = fault.loop.time()
        if not self.queue.push(item, now=now, slow=fault.slow, size=size):
            fault.count_drop("gray_queue_full")
            return False
        if self._timer is None:
            self._release()  # not slow and nothing queued: handed on at once
        return True

    def _release(self) -> None:
        self._timer = None
        loop = self._fault.loop
        while True:
            item = self.queue.pop_due(now=loop.time())
            if item is None:
                break
            self._deliver(item)
        due = self.queue.next_due()
        if due is not None:
            self._timer = loop.call_at(due, self._release)

    def close(self) -> list[T]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return self.queue.clear()


def _go_duration(seconds: float) -> str:
    """`2s`, `500ms`: how mlnode prints the mean (Go's time.Duration)."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


def _fmt_range(value: tuple[float, float]) -> str:
    return f"{value[0]:g},{value[1]:g}"


class GrayFault:
    """The slow schedule and the delay queues of one agent, on its event loop.

    The driver routes its inputs through `delay_datagrams`, `admit_stream` and (with
    `dialed`) `delay_reply`; `start()` arms the schedule, `close()` stops everything and
    closes the sockets still queued.
    """

    def __init__(
        self,
        options: GrayFaultOptions,
        *,
        name: str,
        loop: asyncio.AbstractEventLoop,
        count_drop: Callable[[str], None],
        err: TextIO | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.name = name
        self.loop = loop
        self.count_drop = count_drop
        self.slow = False
        self._err = err
        self._wall = wall_clock
        self._closed = False
        self._timers: list[asyncio.TimerHandle] = []
        self._toggles: Iterator[Toggle] = iter(())
        seed = options.seed
        self._datagrams: _Lane[tuple[bytes, Address, Callable[[bytes, Address], None]]] = _Lane(
            self,
            DelayQueue(
                seed + DATAGRAM_SEED_OFFSET,
                options.mean,
                max_items=MAX_QUEUED_DATAGRAMS,
                max_bytes=MAX_QUEUED_BYTES,
            ),
            lambda it: it[2](it[0], it[1]),
        )
        self._streams: _Lane[tuple[socket.socket, Callable[[socket.socket], None]]] = _Lane(
            self,
            DelayQueue(seed + STREAM_SEED_OFFSET, options.mean, max_items=MAX_QUEUED_STREAMS),
            lambda it: it[1](it[0]),
        )
        self._dialed: _Lane[Callable[[], None]] | None = None
        if options.dialed:
            self._dialed = _Lane(
                self,
                DelayQueue(seed + DIALED_SEED_OFFSET, options.mean, max_items=MAX_QUEUED_STREAMS),
                lambda release: release(),
            )

    # -- what the driver routes through us ------------------------------------------------

    def delay_datagrams(
        self, handler: Callable[[bytes, Address], None]
    ) -> Callable[[bytes, Address], None]:
        """`handler`, called through the datagram queue."""
        lane = self._datagrams

        def delayed(data: bytes, sender: Address) -> None:
            lane.push((data, sender, handler), len(data))

        return delayed

    def admit_stream(
        self, conn: socket.socket, hand_over: Callable[[socket.socket], None]
    ) -> None:
        """Hand the accepted `conn` over when its turn in the stream queue comes."""
        if self._closed or not self._streams.push((conn, hand_over)):
            conn.close()

    def delay_reply(self, release: Callable[[], None]) -> None:
        """Call `release` (read a dialed connection's first bytes) when its turn comes.

        A dropped release would leave a connection paused: it is released at once
        instead (a queue that full means the process is far behind anyway)."""
        if self._dialed is None or self._closed or not self._dialed.push(release):
            release()

    @property
    def dialed(self) -> bool:
        return self._dialed is not None

    # -- schedule -----------------------------------------------------------------------

    def start(self) -> None:
        """Arm the slow schedule and the periodic counters line."""
        opts = self.options
        wall = self._wall()
        origin = opts.at if opts.at is not None else wall + opts.after
        self._print(
            f"schedule origin={origin:.6f} seed={opts.seed} mean={_go_duration(opts.mean)}"
            f" on={_fmt_range(opts.on)} off={_fmt_range(opts.off)}"
        )
        # The schedule is in unix time (so processes can share an origin); the loop's
        # clock is monotonic: convert once, here.
        offset = self.loop.time() - wall
        self._toggles = iter(SlowSchedule(opts, origin=origin + offset))
        self._arm_next_toggle()
        self._timers.append(self.loop.call_later(STATS_PERIOD, self._report_stats))

    def _arm_next_toggle(self) -> None:
        toggle = next(self._toggles, None)
        if toggle is None:
            return
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(self.loop.call_at(toggle.at, self._toggle, toggle))

    def _toggle(self, toggle: Toggle) -> None:
        if self._closed:
            return
        self.slow = toggle.slow
        line = f"slow={'on' if toggle.slow else 'off'} t={self._wall():.6f} for={toggle.length:.3f}"
        if not toggle.slow:
            line += " " + self.stats_text()
        self._print(line)
        self._arm_next_toggle()

    def _report_stats(self) -> None:
        if self._closed:
            return
        self._print(f"stats t={self._wall():.6f} {self.stats_text()}")
        self._timers.append(self.loop.call_later(STATS_PERIOD, self._report_stats))

    def stats_text(self) -> str:
        text = f"packets{{{self._datagrams.queue.stats}}} streams{{{self._streams.queue.stats}}}"
        if self._dialed is not None:
            text += f" dialed{{{self._dialed.queue.stats}}}"
        return text

    def _print(self, line: str) -> None:
        out = self._err if self._err is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):  # a closed stderr must not stop us
            print(f"GRAY {self.name} {line}", file=out, flush=True)

    def close(self) -> None:
        """Stop the schedule; drop queued input and close queued sockets."""
        if self._closed:
            return
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._datagrams.close()
        for conn, _ in self._streams.close():
            conn.close()
        if self._dialed is not None:
            self._dialed.close()
