"""Bounded event buffers that report what they had to drop, one per consumer.

The core may emit bursts (a push/pull join brings hundreds of members at once)
while the application reads slowly. Nothing in the driver may grow without
bound, so when the buffer is full new events are dropped and counted; the
consumer then receives one `EventsLost(count)` marking the gap, in order.
`EventFanout` gives every consumer its own such buffer, so a slow or abandoned
consumer costs the others nothing.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


@dataclasses.dataclass(frozen=True, slots=True)
class EventsLost:
    """`count` events were dropped here because the consumer fell behind."""

    count: int


class EventBuffer(Generic[T]):
    """Bounded FIFO of events with gap markers; `close()` ends iteration."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("EventBuffer capacity must be >= 1")
        self._capacity = capacity
        self._items: collections.deque[T | EventsLost] = collections.deque()
        self._pending_lost = 0
        self._total_lost = 0
        self._closed = False
        self._wakeup: asyncio.Event | None = None

    @property
    def total_lost(self) -> int:
        """Events dropped since creation."""
        return self._total_lost

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Append `item`; return False (and count it) if the buffer is full or closed."""
        if self._closed:
            return False
        if len(self._items) >= self._capacity:
            self._pending_lost += 1
            self._total_lost += 1
            return False
        if self._pending_lost:
            # The marker may push the buffer one over capacity: it is a bounded,
            # single extra item, and it must sit exactly at the gap.
            self._items.append(EventsLost(self._pending_lost))
            self._pending_lost = 0
        self._items.append(item)
        self._wake()
        return True

    def close(self) -> None:
        """End iteration once the buffered items are consumed."""
        self._closed = True
        self._wake()

    def get_nowait(self) -> T | EventsLost | None:
        """The next item, a pending gap marker, or None if empty."""
        if self._items:
            return self._items.popleft()
        if self._pending_lost:
            lost = EventsLost(self._pending_lost)
            self._pending_lost = 0
            return lost
        return None

    async def get(self) -> T | EventsLost | None:
        """Wait for the next item; None once closed and drained."""
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self._closed:
                return None
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()

    async def __aiter__(self) -> AsyncIterator[T | EventsLost]:
        while True:
            item = await self.get()
            if item is None:
                return
            yield item
            # Not pinned while we wait for the next one (it may be a 20 MiB message).
            del item

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()


class EventSink(Protocol[T_contra]):
    """Where the agent puts events: `put` each, `close` at the end."""

    def put(self, item: T_contra) -> object: ...

    def close(self) -> None: ...


class EventFanout(Generic[T]):
    """One bounded `EventBuffer` per consumer; `put` offers each event to all of them.

    The first consumer takes the buffer that has been filling since construction (so it
    sees every event from the start). When a consumer stops (its iterator exhausted,
    `aclose()`d, or collected after a `break`), its buffer becomes the spare: it keeps
    filling, and the next consumer takes it over and goes on where the last one stopped,
    as with one shared stream. A consumer that finds no spare gets a new buffer holding
    the events from its subscription on.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._spare: EventBuffer[T] | None = EventBuffer(capacity)
        self._buffers: list[EventBuffer[T]] = [self._spare]
        self._lost_by_gone = 0
        self._closed = False

    @property
    def total_lost(self) -> int:
        """Events dropped since creation, summed over every buffer (the spare's included)."""
        return self._lost_by_gone + sum(b.total_lost for b in self._buffers)

    @property
    def consumers(self) -> int:
        """Buffers currently fed (the spare included)."""
        return len(self._buffers)

    def put(self, item: T) -> None:
        for buffer in self._buffers:
            buffer.put(item)

    def close(self) -> None:
        """End every consumer's iteration once its buffered items are consumed."""
        self._closed = True
        for buffer in self._buffers:
            buffer.close()

    def subscribe(self) -> AsyncIterator[T | EventsLost]:
        """A new consumer: an async iterator over its own buffer."""
        buffer = self._spare
        self._spare = None
        if buffer is None:
            buffer = EventBuffer(self._capacity)
            if self._closed:
                buffer.close()
            else:
                self._buffers.append(buffer)
        return _Consumer(self, buffer)

    def release(self, buffer: EventBuffer[T]) -> None:
        """A consumer stopped: its buffer becomes the spare, or goes if there is one."""
        if buffer not in self._buffers:
            return
        if self._spare is None and not self._closed:
            self._spare = buffer
        else:
            self._buffers.remove(buffer)
            self._lost_by_gone += buffer.total_lost


class _Consumer(Generic[T]):
    """One consumer's iterator. Released when exhausted, `aclose()`d or collected: not an
    async generator, whose `finally` asyncio runs only loop turns later (or never, for
    one never iterated), so a consumer that stops hands its buffer back at once."""

    def __init__(self, fan: EventFanout[T], buffer: EventBuffer[T]) -> None:
        self._fan = fan
        self._buffer: EventBuffer[T] | None = buffer

    def __aiter__(self) -> _Consumer[T]:
        return self

    async def __anext__(self) -> T | EventsLost:
        if self._buffer is None:
            raise StopAsyncIteration
        item = await self._buffer.get()
        if item is None:
            self.release()
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self.release()

    def release(self) -> None:
        if self._buffer is not None:
            self._fan.release(self._buffer)
            self._buffer = None

    def __del__(self) -> None:
        self.release()
