"""Serf's event handler scripts: `--event-handler [FILTER=]SCRIPT`.

Each event (a Serf stream record, coalesced as a serf agent coalesces them) a
handler's filter passes runs `/bin/sh -c SCRIPT` with Serf's environment
(`SERF_EVENT`, `SERF_SELF_NAME`, `SERF_SELF_ROLE`, `SERF_TAG_*`, `SERF_USER_*`,
`SERF_QUERY_*`) and stdin (one `NAME\\tADDR\\tROLE\\tTAGS` line per member, or the
payload). A query handler's output is the query's response.

Serf runs the scripts in its event loop, so a slow script delays every later event.
Here they run one at a time in their own task, behind a bounded queue: the protocol
never waits for a script; when the queue is full the event is dropped and counted,
and a script that outlives its timeout has its whole process group killed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import ipaddress
import logging
import os
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from swimguard.rpc.coalesce import MemberEventCoalescer, UserEventCoalescer
from swimguard.rpc.event_filter import EventFilter, EventKind, StreamRecord, parse_event_filter
from swimguard.serf.events import QueryReceived

__all__ = [
    "OUTPUT_LIMIT",
    "EventHandlerRunner",
    "HandlerJob",
    "HandlerSpec",
    "handler_job",
    "parse_handler_spec",
]

log = logging.getLogger("swimguard.handlers")

_MEMBER_KINDS = frozenset({
    EventKind.MEMBER_JOIN, EventKind.MEMBER_LEAVE, EventKind.MEMBER_FAILED,
    EventKind.MEMBER_UPDATE, EventKind.MEMBER_REAP,
})

SLOW_WARNING = 1.0
"""Seconds after which a running script is logged as slow (Serf's warning)."""

OUTPUT_LIMIT = 8192
"""Bytes of a script's stdout+stderr kept (the last ones), as Serf's circular buffer."""

@dataclasses.dataclass(frozen=True, slots=True)
class HandlerSpec:
    """One `--event-handler`: which events, and the shell command run for them."""

    filter: EventFilter
    script: str
    text: str  # as given, for logs


def parse_handler_spec(text: str) -> HandlerSpec:
    """`[FILTER=]SCRIPT` as Serf reads it; ValueError names what is wrong."""
    filter_text, sep, script = text.partition("=")
    if not sep:
        filter_text, script = "*", text
    if not script:
        raise ValueError(f"{text!r}: no script")
    event_filter = parse_event_filter(filter_text)
    if event_filter is None:
        raise ValueError(f"{text!r}: invalid event filter {filter_text!r}")
    return HandlerSpec(event_filter, script, text)


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerJob:
    """What the scripts get for one event: the variables Serf adds, stdin, and the query."""

    kind: EventKind
    name: str | None  # user event / query name, for `user:NAME` filters
    env: Mapping[str, str]
    stdin: bytes
    query: QueryReceived | None = None


def _env_key(tag: str) -> str:
    return "SERF_TAG_" + re.sub(r"[^A-Z0-9_]", "_", tag.upper())


def _escape(text: str) -> str:
    return text.replace("\t", "\\t").replace("\n", "\\n")


def _member_line(member: Mapping[str, Any]) -> str:
    """One stdin line from an RPC `Member` map: `NAME\tADDR\tROLE\tTAGS`."""
    raw_tags = member.get("Tags")
    tags: Mapping[str, str] = raw_tags if isinstance(raw_tags, dict) else {}
    pairs = ",".join(f"{k}={v}" for k, v in tags.items())
    addr = member.get("Addr", b"")
    try:
        host = str(ipaddress.ip_address(addr)) if isinstance(addr, bytes) else ""
    except ValueError:
        host = ""
    name = str(member.get("Name", ""))
    return f"{_escape(name)}\t{host}\t{_escape(tags.get('role', ''))}\t{_escape(pairs)}\n"


def _payload_stdin(payload: bytes) -> bytes:
    if payload and not payload.endswith(b"\n"):
        return payload + b"\n"
    return payload


def handler_job(
    record: StreamRecord, self_name: str, self_tags: Mapping[str, str]
) -> HandlerJob | None:
    """The job for a stream record (as the RPC's streams get it), or None for Serf's
    internal queries."""
    env = {
        "SERF_EVENT": record.kind.value,
        "SERF_SELF_NAME": self_name,
        "SERF_SELF_ROLE": self_tags.get("role", ""),
    }
    for tag, value in self_tags.items():
        env[_env_key(tag)] = value
    body = record.body
    payload = body.get("Payload")
    payload = payload if isinstance(payload, bytes) else b""
    if record.kind is EventKind.USER:
        env["SERF_USER_EVENT"] = str(body.get("Name", ""))
        env["SERF_USER_LTIME"] = str(body.get("LTime", 0))
        return HandlerJob(record.kind, record.name, env, _payload_stdin(payload))
    if record.kind is EventKind.QUERY:
        name = str(body.get("Name", ""))
        query = record.query
        if name.startswith("_serf_") or not isinstance(query, QueryReceived):
            return None  # Serf's internal queries never reach scripts
        env["SERF_QUERY_NAME"] = name
        env["SERF_QUERY_LTIME"] = str(body.get("LTime", 0))
        return HandlerJob(record.kind, record.name, env, _payload_stdin(payload), query)
    members = body.get("Members")
    lines = "".join(_member_line(m) for m in members) if isinstance(members, list) else ""
    return HandlerJob(record.kind, None, env, lines.encode("utf-8", "surrogateescape"))


class EventHandlerRunner:
    """Runs the handlers' scripts for submitted jobs, one at a time, in its own task.

    `publish` takes stream records and coalesces member events and user events sent
    with Coalesce as a serf agent does (1 s of quiet, 3 s at most: one script run per
    event type, each member's latest event on its stdin); `self_info` gives our name and
    tags when a job is made. `submit` never blocks: a full queue drops the job
    (`dropped` counts them). Each script gets `timeout` seconds; then its process group
    is killed. `replace` swaps the handlers (SIGHUP) for the jobs not yet started.
    """

    def __init__(
        self,
        handlers: Sequence[HandlerSpec],
        *,
        self_info: Callable[[], tuple[str, Mapping[str, str]]] = lambda: ("", {}),
        coalesce: bool = True,
        queue_size: int = 256,
        timeout: float = 30.0,
        on_output: Callable[[HandlerSpec, bytes], None] | None = None,
    ) -> None:
        self.handlers = tuple(handlers)
        self._self_info = self_info
        self._members = MemberEventCoalescer() if coalesce else None
        self._users = UserEventCoalescer() if coalesce else None
        self._flush_at: asyncio.TimerHandle | None = None
        self.timeout = timeout
        self.on_output = on_output
        """Called with each script's kept output (tests and logs read it)."""
        self.dropped = 0
        self.failed = 0
        self.timed_out = 0
        self.ran = 0
        self._queue: asyncio.Queue[HandlerJob] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None

    def replace(self, handlers: Sequence[HandlerSpec]) -> None:
        self.handlers = tuple(handlers)

    def publish(self, record: StreamRecord) -> None:
        """Take one stream record; its job is submitted now or when coalescing ends."""
        if not self.handlers:
            return  # nothing to run: nothing held either
        loop = asyncio.get_running_loop()
        if self._members is not None and record.kind in _MEMBER_KINDS:
            self._members.add(record, now=loop.time())
            self._schedule(loop)
            return
        if self._users is not None and self._users.add(record, now=loop.time()):
            self._schedule(loop)
            return
        self._submit_record(record)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        due = [c.deadline() for c in (self._members, self._users) if c is not None]
        times = [d for d in due if d is not None]
        if times:
            self._flush_at = loop.call_at(min(times), self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_at = None
        now = loop.time()
        for coalescer in (self._members, self._users):
            if coalescer is not None:
                for record in coalescer.flush(now=now):
                    self._submit_record(record)
        self._schedule(loop)

    def _submit_record(self, record: StreamRecord) -> None:
        name, tags = self._self_info()
        job = handler_job(record, name, tags)
        if job is not None:
            self.submit(job)

    def submit(self, job: HandlerJob) -> None:
        if not any(h.filter.matches(job.kind, job.name) for h in self.handlers):
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event handler queue full: %s event dropped", job.kind.value)

    async def idle(self) -> None:
        """Wait until every submitted job has run (tests)."""
        await self._queue.join()

    async def close(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                for spec in self.handlers:
                    if spec.filter.matches(job.kind, job.name):
                        await self._invoke(spec, job)
            except Exception:  # a bug here must not end the handlers for good
                log.exception("event handler failed")
            finally:
                self._queue.task_done()

    async def _invoke(self, spec: HandlerSpec, job: HandlerJob) -> None:
        env = dict(os.environ)
        env.update(job.env)
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", spec.script,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills it all
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL in a name or tag from gossip
            self.failed += 1
            log.error("event handler %r cannot start: %s", spec.text, exc)
            return
        self.ran += 1
        output: collections.deque[bytes] = collections.deque()
        kept = 0

        async def talk() -> None:
            nonlocal kept
            assert proc.stdin is not None
            assert proc.stdout is not None
            with contextlib.suppress(OSError):  # the script may not read its stdin
                proc.stdin.write(job.stdin)
                await proc.stdin.drain()
            proc.stdin.close()
            while chunk := await proc.stdout.read(4096):
                output.append(chunk)
                kept += len(chunk)
                while kept - len(output[0]) >= OUTPUT_LIMIT:
                    kept -= len(output.popleft())
            await proc.wait()

        # As Serf, say so when a script is slow (later events wait for it).
        slow = asyncio.get_running_loop().call_later(
            SLOW_WARNING, log.warning, "event handler %r for %s still running after %.0fs",
            spec.text, job.kind.value, SLOW_WARNING,
        )
        try:
            await asyncio.wait_for(talk(), self.timeout)
        except TimeoutError:
            self.timed_out += 1
            log.error("event handler %r timed out after %.1fs: killed", spec.text, self.timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            slow.cancel()
        data = b"".join(output)[-OUTPUT_LIMIT:]
        if proc.returncode != 0:
            self.failed += 1
            log.error(
                "event handler %r for %s exited with %s: %r",
                spec.text, job.kind.value, proc.returncode, data[-512:],
            )
        if self.on_output is not None:
            self.on_output(spec, data)
        if job.query is not None and data and proc.returncode == 0:  # Serf: only on success
            try:
                job.query.respond(data)
            except Exception as exc:  # too large, past the deadline, already answered
                log.error("event handler %r: query response not sent: %s", spec.text, exc)
