"""What an `Agent` keeps across restarts: Serf's snapshot file and keyring file, and rejoining.

Mixed into `Agent`; set by `AgentConfig.snapshot_path`, `rejoin_after_leave` and
`keyring_file` (the CLI's `--snapshot`, `--rejoin`, `--keyring-file`).

- Snapshot (Serf's `-snapshot`): at start the file is replayed (`serf.snapshot`), the
  Serf layer's clocks resume from it, so user events and queries seen before the restart
  are neither delivered nor re-gossiped again, and the members it remembers as alive are
  rejoined in the background, one at a time in random order until one answers (Serf's
  `handleRejoin`; `wait_rejoin()` tells which). While running, member joins, leaves and
  failures and the three clocks are appended (`PersistenceWatch`) and flushed every half
  second; a graceful `leave()` writes `leave`, after which a restart rejoins nobody unless
  `rejoin_after_leave` (Serf's `-rejoin`).
- Keyring file (Serf's `-keyring-file`): its keys replace the `keyring` argument at start
  (a missing file is created from that argument), and it is rewritten after every change
  a key query made (`KeyringChanged`: `serf keys`, or our own `Agent.keys`).
- `retry_join()`: Serf's `-retry-join`, joining until it works, `max_attempts` retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.agent_event import EventFilter
from swimguard.aio.agent_keys import AgentKeys
from swimguard.aio.driver import DrivenNode, NodeEvent
from swimguard.aio.keyring_file import read_keyring_file, write_keyring_file
from swimguard.aio.snapshot_file import SnapshotFile, read_snapshot
from swimguard.errors import JoinError, UsageError
from swimguard.protocol.events import MemberFailed, MemberJoined, MemberLeft
from swimguard.protocol.outgoing import Address
from swimguard.serf.events import KeyringChanged
from swimguard.serf.layer import SerfLayer
from swimguard.serf.node import SerfNode
from swimguard.wire.encryption import Keyring

__all__ = ["AgentPersistence", "PersistenceWatch"]

log = logging.getLogger("swimguard.agent")

# Serf's flushInterval and clockUpdateInterval (snapshot.go): both 500 ms.
FLUSH_INTERVAL: Final = 0.5


class PersistenceWatch:
    """Sees every node event first: records it in the snapshot, rewrites the keyring file.

    An `EventFilter` of the agent's router. It passes every event on but
    `KeyringChanged`, which is the agent's business, not the application's.
    """

    def __init__(self) -> None:
        self.file: SnapshotFile | None = None
        self.layer: SerfLayer | None = None
        self.keyring_path: Path | None = None
        self._keyring_writes: asyncio.Task[None] | None = None
        self._keyring_latest: tuple[bytes, ...] | None = None

    def filter(self, event: NodeEvent) -> NodeEvent | None:
        if isinstance(event, KeyringChanged):
            self._keyring_changed(event.keys)
            return None
        snap, layer = self.file, self.layer
        if snap is None or layer is None:
            return event
        rec = snap.recorder
        clock = layer.member_clock.time()
        if isinstance(event, MemberJoined):
            host, port = event.member.addr
            snap.append(rec.on_alive(event.member.name, host, port, member_clock=clock))
        elif isinstance(event, MemberLeft | MemberFailed):
            snap.append(rec.on_not_alive(event.member.name, member_clock=clock))
        self.record_clocks(member=False)
        return event

    def record_clocks(self, *, member: bool = True) -> None:
        """Append the clock lines that grew (Serf writes `clock:` every 500 ms)."""
        snap, layer = self.file, self.layer
        if snap is None or layer is None:
            return
        rec = snap.recorder
        if member:
            snap.append(rec.on_clock(layer.member_clock.time()))
        snap.append(rec.on_user_event(layer.last_event_ltime))
        snap.append(rec.on_query(layer.last_query_ltime))

    def _keyring_changed(self, keys: tuple[bytes, ...]) -> None:
        if self.keyring_path is None:
            return
        # Each write holds the whole keyring: only the latest matters, one write at a time.
        self._keyring_latest = keys
        if self._keyring_writes is None or self._keyring_writes.done():
            self._keyring_writes = asyncio.get_running_loop().create_task(self._write_keyring())

    async def _write_keyring(self) -> None:
        path = self.keyring_path
        while path is not None and self._keyring_latest is not None:
            keys, self._keyring_latest = self._keyring_latest, None
            try:
                await asyncio.to_thread(write_keyring_file, path, keys)
            except OSError as exc:
                log.error("cannot write keyring file %s: %s", path, exc.strerror or exc)

    async def keyring_written(self) -> None:
        """Wait until the keyring file holds the latest keyring."""
        if self._keyring_writes is not None:
            await asyncio.shield(self._keyring_writes)

    def close(self) -> None:
        """Nothing here: the agent closes the file after the driver stopped."""


class AgentPersistence(AgentKeys):
    """The snapshot, keyring file, rejoin and retry-join part of `Agent` (see module)."""

    options: AgentConfig
    _keyring: Keyring | None
    _rng: random.Random
    _node: DrivenNode | None
    _persist_watch: PersistenceWatch
    _snapshot_ticker: asyncio.Task[None] | None = None
    _rejoin: asyncio.Task[str | None] | None = None

    async def join(
        self,
        seeds: Sequence[str | Address],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the Agent's signature
    ) -> int:
        raise NotImplementedError

    def _event_filters(self) -> tuple[EventFilter, ...]:
        self._persist_watch = PersistenceWatch()
        return (self._persist_watch, *super()._event_filters())

    async def _load_persistence(self) -> None:
        """Before the node is built: read the keyring file (its keys are the node's)."""
        if self.options.snapshot_path is not None and not self._serf_compat:
            raise UsageError("snapshot_path needs serf_compat=True (the clocks are Serf's)")
        path = self.options.keyring_file
        if path is None:
            return
        keyring_path = Path(path)
        keys = await asyncio.to_thread(read_keyring_file, keyring_path)
        if keys is None:
            if self._keyring is None:
                raise UsageError(f"keyring file {path} does not exist (and no key was given)")
            try:
                await asyncio.to_thread(write_keyring_file, keyring_path, self._keyring.keys)
            except OSError as exc:
                raise UsageError(f"keyring file {path}: {exc.strerror or exc}") from None
        else:
            if self._keyring is not None and self._keyring.keys != tuple(keys):
                # Serf refuses -encrypt with -keyring-file; we let the file win, so the
                # same command line works before and after the file exists.
                log.warning("%s: the keys given are ignored: keyring file %s", self.name, path)
            self._keyring = Keyring(keys)
            log.info("%s: restored keyring with %d keys from %s", self.name, len(keys), path)
        self._persist_watch.keyring_path = keyring_path

    async def _attach_persistence(self) -> None:
        """After the node is built, before it hears anything: replay the snapshot."""
        path = self.options.snapshot_path
        node = self._node
        if path is None or not isinstance(node, SerfNode):
            return
        try:
            rec = await asyncio.to_thread(
                read_snapshot, Path(path), rejoin_after_leave=self.options.rejoin_after_leave
            )
            snap = SnapshotFile(Path(path), rec)
            await asyncio.to_thread(snap.open)
        except OSError as exc:  # not bad content (that is skipped): no file we can use
            raise UsageError(f"snapshot {path}: {exc.strerror or exc}") from None
        if rec.problems:
            log.warning(
                "%s: snapshot %s: skipped bad lines: %s", self.name, path, dict(rec.problems)
            )
            # Counted with the dropped input (agent.drops, metrics), as `serf_snapshot_*`.
            node.serf.drops.update({f"snapshot_{k}": n for k, n in rec.problems.items()})
            rec.problems.clear()
        node.serf.restore_clocks(rec.last_clock, rec.last_event_clock, rec.last_query_clock)
        log.info(
            "%s: snapshot %s: %d members remembered; clock %d, event clock %d, query clock %d",
            self.name, path, len(rec.alive), rec.last_clock, rec.last_event_clock,
            rec.last_query_clock,
        )
        self._persist_watch.layer = node.serf
        self._persist_watch.file = snap
        self._snapshot_ticker = asyncio.get_running_loop().create_task(self._tick_snapshot())

    def _start_rejoin(self) -> None:
        """Once the sockets serve: rejoin the members the snapshot remembers, if any."""
        snap = self._persist_watch.file
        if snap is None:
            return
        previous = snap.recorder.alive_members(exclude=self.name)
        if previous:
            self._rng.shuffle(previous)
            self._rejoin = asyncio.get_running_loop().create_task(self._rejoin_any(previous))

    async def _rejoin_any(self, previous: list[tuple[str, Address]]) -> str | None:
        for name, addr in previous:
            log.info("%s: attempting re-join to previously known node %s", self.name, name)
            try:
                await self.join([addr])
            except (JoinError, UsageError) as exc:
                log.info("%s: failed to re-join %s: %s", self.name, name, exc)
                continue
            log.info("%s: re-joined to previously known node %s", self.name, name)
            return name
        log.warning("%s: failed to re-join any previously known node", self.name)
        return None

    async def wait_rejoin(self) -> str | None:
        """The member the start-up rejoin went through; None if none answered or none
        was remembered (no snapshot, a fresh one, or the last run left gracefully)."""
        task = self._rejoin
        if task is None or (task.done() and task.cancelled()):
            return None  # the agent closed before the rejoin ended
        return await asyncio.shield(task)

    async def _tick_snapshot(self) -> None:
        snap = self._persist_watch.file
        while snap is not None:
            await asyncio.sleep(FLUSH_INTERVAL)
            self._persist_watch.record_clocks()
            await snap.flush()

    async def _persist_leave(self) -> None:
        """A graceful leave: `leave` goes to the snapshot, on disk before we go."""
        snap = self._persist_watch.file
        if snap is not None:
            snap.append(snap.recorder.on_leave())
            await snap.flush(sync=True)

    async def _close_persistence(self) -> None:
        """After the driver stopped: the last clock line, then flush and close the file."""
        for task in (self._snapshot_ticker, self._rejoin):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        snap = self._persist_watch.file
        if snap is not None:
            self._persist_watch.record_clocks()
            await snap.close()
        with contextlib.suppress(Exception):
            await self._persist_watch.keyring_written()

    async def retry_join(
        self,
        seeds: Sequence[str | Address],
        *,
        interval: float = 30.0,
        max_attempts: int = 0,
    ) -> int:
        """Join `seeds`, retrying every `interval` seconds until one answers (Serf's
        `-retry-join`); returns how many answered.

        `max_attempts` retries at most (0: forever), as Serf counts them: the first try
        plus up to that many more; then the last `JoinError` is raised.
        """
        if not (math.isfinite(interval) and interval >= 0) or max_attempts < 0:
            raise ValueError("retry_join: interval and max_attempts must be >= 0 (and finite)")
        attempt = 0
        while True:
            try:
                joined = await self.join(seeds)
            except JoinError as exc:
                attempt += 1
                if max_attempts and attempt > max_attempts:
                    log.error("%s: maximum retry join attempts made: %s", self.name, exc)
                    raise
                log.warning("%s: join failed: %s, retrying in %gs", self.name, exc, interval)
                await asyncio.sleep(interval)
                continue
            log.info("%s: join completed, synced with %d initial agents", self.name, joined)
            return joined
