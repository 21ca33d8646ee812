"""The snapshot file on disk: read at start, appended as things happen, compacted atomically.

`serf.snapshot.SnapshotRecorder` decides what the file says; this module only moves its
lines to and from the disk. Appends are buffered in memory and written by `flush()` in a
worker thread (the event loop never waits on the disk); the agent flushes every half
second, as Serf does. The buffer is bounded: past `max_pending` lines the next flush
rewrites the file from the recorder's state instead (that state already holds what the
lines said). Compaction writes `PATH.compact`, fsyncs it and renames it over `PATH`, so a
crash leaves either the old file or the new one, never half of one.

A write error is logged and counted (`write_errors`); the next flush then tries a
compaction, which rewrites the whole file from the state (Serf does the same to recover).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Final

from swimguard.serf.snapshot import MAX_LINE_BYTES, SnapshotRecorder

__all__ = ["SnapshotFile", "read_snapshot"]

log = logging.getLogger("swimguard.agent")

# Read in pieces of this size: a line longer than a record can be is skipped piece by piece.
_READ_LIMIT: Final = MAX_LINE_BYTES + 1


def read_snapshot(path: Path, *, rejoin_after_leave: bool) -> SnapshotRecorder:
    """The state a snapshot file holds (empty if there is none); blocking, call in a thread.

    Bad lines are skipped and counted in the recorder's `problems`; only an unreadable
    file (permissions, a directory) raises `OSError`.
    """
    recorder = SnapshotRecorder(rejoin_after_leave=rejoin_after_leave)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return recorder
    with fh:
        while line := fh.readline(_READ_LIMIT):
            if len(line) < _READ_LIMIT or line.endswith(b"\n"):
                recorder.replay((line,))
                continue
            # Too long for any record: count it once and skip the rest of it.
            recorder.problems["line_too_long"] += 1
            recorder.offset += len(line)
            while (rest := fh.readline(_READ_LIMIT)) and not rest.endswith(b"\n"):
                recorder.offset += len(rest)
            recorder.offset += len(rest)
            recorder.torn = not rest
    return recorder


class SnapshotFile:
    """Keeps `path` in step with `recorder`: `append()` lines, `flush()` them, `close()`."""

    def __init__(self, path: Path, recorder: SnapshotRecorder, *, max_pending: int = 4096) -> None:
        self.path = path
        self.recorder = recorder
        self.write_errors = 0
        self.compactions = 0
        self._max_pending = max_pending
        self._pending: list[str] = []
        # The buffer overflowed, a write failed, or the file ends mid-line: the next flush
        # rewrites the whole file from the recorder's state.
        self._rewrite = recorder.torn
        self._fh: BinaryIO | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._failing = False  # said once per streak of failed writes

    def open(self) -> None:
        """Open (create) the file for appending; blocking, `OSError` if that cannot be."""
        self._fh = self.path.open("ab")

    def append(self, lines: Sequence[str]) -> None:
        """Queue lines for the next flush (nothing is written here)."""
        if self._closed or not lines:
            return
        if self._rewrite:
            return  # the next flush rewrites the file from the state anyway
        self._pending.extend(lines)
        if len(self._pending) > self._max_pending:
            self._pending.clear()
            self._rewrite = True

    async def flush(self, *, sync: bool = False) -> None:
        """Write what is queued (or compact, when due) in a thread; `sync`: fsync too."""
        async with self._lock:
            if self._closed:
                return
            if self._rewrite or self.recorder.should_compact:
                lines = self.recorder.compacted()
                self._pending.clear()
                self._rewrite = False
                await asyncio.to_thread(self._compact, "".join(lines).encode("utf-8"))
                return
            if not self._pending and not sync:
                return
            data = "".join(self._pending).encode("utf-8")
            self._pending.clear()
            await asyncio.to_thread(self._append, data, sync)

    async def close(self) -> None:
        """Flush and fsync what is queued, then close the file; idempotent."""
        await self.flush(sync=True)
        async with self._lock:
            self._closed = True
            if self._fh is not None:
                fh, self._fh = self._fh, None
                await asyncio.to_thread(fh.close)

    # -- in the worker thread (one at a time: the lock) ----------------------------------

    def _append(self, data: bytes, sync: bool) -> None:
        try:
            if self._fh is None:
                self._fh = self.path.open("ab")
            self._fh.write(data)
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
        except OSError as exc:
            self._failed("append to", exc)
            return
        self._succeeded()

    def _compact(self, data: bytes) -> None:
        tmp = self.path.with_name(self.path.name + ".compact")
        try:
            with tmp.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            if self._fh is not None:
                fh, self._fh = self._fh, None
                fh.close()
            os.replace(tmp, self.path)
            self._sync_dir()
            self._fh = self.path.open("ab")
            self.compactions += 1
        except OSError as exc:
            self._failed("compact", exc)
            return
        self._succeeded()

    def _sync_dir(self) -> None:
        # The rename is durable once the directory is: without it a crash may bring the
        # old file back (harmless: it said no less).
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _failed(self, what: str, exc: OSError) -> None:
        self.write_errors += 1
        self._rewrite = True  # the file may now miss lines: rewrite it from the state
        if not self._failing:  # a full disk fails every flush: say it once
            self._failing = True
            log.error("snapshot: cannot %s %s: %s", what, self.path, exc.strerror or exc)

    def _succeeded(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("snapshot: writing %s works again (file rewritten)", self.path)
