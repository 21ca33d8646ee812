"""`AgentBackend`: the RPC server's commands carried out by a `swimguard.aio.Agent`."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final, Protocol

from swimguard.errors import JoinError, UsageError
from swimguard.protocol.events import MemberFailed, MemberJoined, MemberLeft, MemberUpdated
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.names import name_problem
from swimguard.rpc.backend import BackendError, KeyCommand, KeyResult, QueryItemKind
from swimguard.rpc.codec import sorted_map
from swimguard.rpc.event_filter import EventKind, StreamRecord
from swimguard.rpc.handlers import user_record
from swimguard.rpc.join_errors import multierror, seed_failures
from swimguard.rpc.members import MemberDirectory, RpcMember, SerfStatus
from swimguard.serf import encode_tags
from swimguard.serf.coordinate import Coordinate
from swimguard.serf.coordinate_exchange import coordinate_map
from swimguard.serf.events import (
    LeaveIntentReceived,
    QueryAckReceived,
    QueryReceived,
    QueryResponseReceived,
    UserEventReceived,
)
from swimguard.serf.internal_queries import KeyResponse
from swimguard.serf.layer import SerfLayer
from swimguard.serf.messages import Leave, encode_message
from swimguard.serf.node import SerfNode

__all__ = ["AgentBackend"]

_MEMBER_EVENTS: Final[Mapping[type, EventKind]] = {
    MemberJoined: EventKind.MEMBER_JOIN,
    MemberLeft: EventKind.MEMBER_LEAVE,
    MemberFailed: EventKind.MEMBER_FAILED,
    MemberUpdated: EventKind.MEMBER_UPDATE,
}


class Agent(Protocol):
    """What is used of `swimguard.aio.Agent` (the RPC does not import the drivers)."""

    @property
    def name(self) -> str: ...

    @property
    def health_score(self) -> int: ...

    def members(self) -> list[Member]: ...

    async def join(self, seeds: Sequence[str], *, replay: bool = True) -> int: ...

    async def leave(self, timeout: float = 5.0) -> bool: ...  # noqa: ASYNC109

    def user_event(self, name: str, payload: bytes = b"", *, coalesce: bool = True) -> None: ...

    def update_tags(self, tags: Mapping[str, str]) -> None: ...

    def send_best_effort(self, to: tuple[str, int], data: bytes) -> None: ...

    def broadcast(self, data: bytes, key: str | None = None) -> None: ...

    def query(
        self,
        name: str,
        payload: bytes = b"",
        *,
        filter_nodes: Sequence[str] = (),
        filter_tags: Mapping[str, str] | None = None,
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float | None = None,
        expected: int | None = None,
    ) -> AsyncIterator[QueryAckReceived | QueryResponseReceived]: ...

    @property
    def keys(self) -> _KeyManager: ...

    def coordinate(self, name: str | None = None) -> Coordinate | None: ...

    @property
    def coordinate_resets(self) -> int: ...


class _KeyManager(Protocol):
    async def install(self, key: str | bytes) -> KeyResponse: ...

    async def use(self, key: str | bytes) -> KeyResponse: ...

    async def remove(self, key: str | bytes) -> KeyResponse: ...

    async def list(self) -> KeyResponse: ...


class AgentBackend:
    """Adapts an `Agent` (started, with `serf_compat`) to `RpcBackend`.

    Feed it every agent event with `observe` (the CLI's fan-out does): Serf's
    `leaving`/`left`/`failed` statuses, departed members
    and the stream records of events come from them.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        tags: Mapping[str, str] | None = None,
        leave_timeout: float = 5.0,
        encrypted: bool = False,
    ) -> None:
        self._agent = agent
        self._tags = dict(tags or {})
        self._leave_timeout = leave_timeout
        self._encrypted = encrypted
        self._leaving = False
        self.directory = MemberDirectory()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def observe(self, event: object) -> StreamRecord | None:
        """Take note of an agent event; the stream record Serf would send for it, if any."""
        record = self._record(event)
        self.directory.observe(event, now=self._now())
        return record

    def _record(self, event: object) -> StreamRecord | None:
        if isinstance(event, UserEventReceived):
            return user_record(event.name, event.payload, event.ltime, event.coalesce)
        if isinstance(event, QueryReceived):
            query = event.query
            body = sorted_map(
                Event="query", LTime=query.ltime, Name=query.name, Payload=query.payload
            )
            # The deadline runs on our clock from when we saw it, as on a serf agent.
            deadline = event.deadline
            if deadline is None:
                deadline = self._now() + max(0, query.timeout_ns) / 1e9
            return StreamRecord(EventKind.QUERY, query.name, body, event, deadline)
        kind = _MEMBER_EVENTS.get(type(event))
        if kind is None:
            return None
        member = self.directory.convert(event.member)  # type: ignore[attr-defined]
        if kind is EventKind.MEMBER_FAILED and member.status is SerfStatus.LEFT:
            kind = EventKind.MEMBER_LEAVE  # it had announced its leave: Serf says it left
        body = sorted_map(Event=kind.value, Members=[member.to_wire()])
        return StreamRecord(kind, None, body)

    def _serf(self) -> SerfLayer | None:
        # The Agent exposes no Serf layer; its clocks are only read here, for `stats` and
        # the LTime of our own user events (Serf streams those locally too).
        node = getattr(self._agent, "_node", None)
        return node.serf if isinstance(node, SerfNode) else None

    @property
    def name(self) -> str:
        return self._agent.name

    @property
    def tags(self) -> Mapping[str, str]:
        return dict(self._tags)

    def members(self) -> list[RpcMember]:
        serf_members = getattr(self._agent, "serf_members", None)
        if self._serf() is not None and callable(serf_members):
            # The agent's own Serf status table (failed/left kept until reaped, as serf).
            return [
                RpcMember(
                    m.name,
                    m.addr[0],
                    m.addr[1],
                    SerfStatus(m.status.value),
                    dict(m.tags),
                    bytes((*m.protocol, *m.delegate)),
                )
                for m in serf_members()
            ]
        return self.directory.members(self._agent.members(), now=self._now())

    async def join(self, addresses: Sequence[str], *, replay: bool) -> int:
        # memberlist's `name/host:port` form: the name is only a hint; the address decides.
        seeds = [a.rpartition("/")[2] for a in addresses]
        # One seed at a time, as memberlist: a bad one is one error line, the others are
        # still tried, and any success clears the errors.
        joined = 0
        errors: list[str] = []
        for seed in seeds:
            try:
                # Serf's Replay flag: without it, user events from before the join are ignored.
                joined += await self._agent.join([seed], replay=replay)
            except (JoinError, ValueError, UsageError) as exc:
                errors.extend(seed_failures(seed, str(exc)))
        if joined == 0 and errors:
            raise BackendError(multierror(errors))
        return joined

    async def leave(self) -> None:
        if self._leaving:
            raise BackendError("Leave already in progress")
        self._leaving = True
        try:
            done = await self._agent.leave(self._leave_timeout)
        except UsageError as exc:
            raise BackendError(f"Leave called after Shutdown: {exc}") from None
        if not done:
            raise BackendError("timeout while waiting for graceful leave")

    def user_event(self, name: str, payload: bytes, *, coalesce: bool) -> int:
        serf = self._serf()
        ltime = serf.event_clock.time() if serf is not None else 0
        try:
            self._agent.user_event(name, payload, coalesce=coalesce)
        except ValueError:
            size = len(name.encode()) + len(payload)
            if size > 512:
                raise BackendError(
                    "user event exceeds configured limit of 512 bytes before encoding"
                ) from None
            raise BackendError("user event name is not valid text") from None
        except UsageError as exc:
            raise BackendError(str(exc)) from None
        return ltime

    async def set_tags(self, tags: Mapping[str, str]) -> None:
        try:
            encode_tags(tags)
        except ValueError:
            raise BackendError("Encoded length of tags exceeds limit of 512 bytes") from None
        try:
            self._agent.update_tags(tags)
        except (ValueError, UsageError) as exc:
            raise BackendError(str(exc)) from None
        self._tags = dict(tags)

    def query(
        self,
        name: str,
        payload: bytes,
        *,
        filter_nodes: Sequence[str],
        filter_tags: Mapping[str, str],
        request_ack: bool,
        relay_factor: int,
        timeout: float | None,
    ) -> AsyncIterator[tuple[QueryItemKind, str, bytes | None]]:
        try:
            handle = self._agent.query(
                name,
                payload,
                filter_nodes=filter_nodes,
                filter_tags=filter_tags,
                request_ack=request_ack,
                relay_factor=relay_factor,
                timeout=timeout,
            )
        except (ValueError, UsageError) as exc:
            raise BackendError(str(exc)) from None

        async def items() -> AsyncIterator[tuple[QueryItemKind, str, bytes | None]]:
            async for item in handle:
                if isinstance(item, QueryAckReceived):
                    yield QueryItemKind.ACK, item.from_, None
                else:
                    yield QueryItemKind.RESPONSE, item.from_, item.payload

        return items()

    async def key_command(self, command: KeyCommand, key: str) -> KeyResult:
        manager = self._agent.keys
        try:
            if command is KeyCommand.INSTALL:
                result = await manager.install(key)
            elif command is KeyCommand.USE:
                result = await manager.use(key)
            elif command is KeyCommand.REMOVE:
                result = await manager.remove(key)
            else:
                result = await manager.list()
        except (ValueError, UsageError) as exc:
            return KeyResult({}, {}, 0, 0, 0, str(exc))
        return KeyResult(
            result.keys, result.messages, result.num_nodes, result.num_resp, result.num_err,
            result.error,
        )

    def coordinate(self, node: str) -> Mapping[str, object] | None:
        try:
            coord = self._agent.coordinate(node)
        except UsageError:  # --no-serf: no coordinates, as a serf agent with them disabled
            return None
        return coordinate_map(coord) if coord is not None else None

    def force_leave(self, node: str, *, prune: bool) -> None:
        serf = self._serf()
        if serf is None:
            raise BackendError("force-leave needs Serf (the agent runs with --no-serf)")
        problem = name_problem(node)
        if problem is not None:
            # No member can have this name; gossiping it would only spread garbage.
            raise BackendError(f"invalid node name: {problem.value}")
        # Serf's forceLeave: a leave intent about `node` at the current member time. Peers
        # then show a failed `node` as left; one that is alive refutes with a join intent.
        # (The time is only read: the layer witnesses it when the intent comes back.)
        ltime = serf.member_clock.time()
        force_leave = getattr(self._agent, "force_leave", None)
        if callable(force_leave):
            # The agent's own: its status table (what `members` reads) takes it at once.
            force_leave(node, prune=prune)
        else:
            self._agent.broadcast(encode_message(Leave(ltime, node, prune)))
        if node != self.name:
            self.directory.observe(LeaveIntentReceived(node, ltime, prune), now=self._now())
            if prune:
                self.directory.forget(node)

    def _coordinate_resets(self) -> dict[str, str]:
        # Serf lists it only when coordinates are on (with --no-serf they are not).
        try:
            return {"coordinate_resets": str(self._agent.coordinate_resets)}
        except UsageError:
            return {}

    def respond(self, query: object, payload: bytes) -> None:
        assert isinstance(query, QueryReceived)
        try:
            query.respond(payload)  # once, before the deadline, relayed if asked
        except (ValueError, UsageError) as exc:  # QueryRespondError: Serf's text
            raise BackendError(str(exc)) from None

    def explain(self, name: str) -> Mapping[str, object] | None:
        explain = getattr(self._agent, "explain", None)
        if not callable(explain):
            raise BackendError("this agent cannot explain its members")
        try:
            explanation = explain(name)
        except UsageError as exc:  # a custom node_factory: no history to explain from
            raise BackendError(str(exc)) from None
        return explanation.to_dict() if explanation is not None else None

    def stats(self) -> dict[str, dict[str, str]]:
        members = self._agent.members()
        failed = sum(1 for m in members if m.state is MemberState.DEAD)
        left = sum(1 for m in members if m.state is MemberState.LEFT)
        serf = self._serf()
        node = getattr(self._agent, "_node", None)
        queued = getattr(getattr(node, "node", None), "broadcasts_queued", 0)
        cpus = str(os.cpu_count() or 1)
        return {
            "agent": {"name": self.name},
            "runtime": {
                "os": sys.platform,
                "arch": platform.machine(),
                "version": f"python{platform.python_version()}",
                "max_procs": cpus,
                "goroutines": str(len(asyncio.all_tasks())),
                "cpu_count": cpus,
            },
            "serf": {
                "members": str(len(members)),
                "failed": str(failed),
                "left": str(left),
                "health_score": str(self._agent.health_score),
                "member_time": str(serf.member_clock.time() if serf else 0),
                "event_time": str(serf.event_clock.time() if serf else 0),
                "query_time": str(serf.query_clock.time() if serf else 0),
                "intent_queue": str(queued),
                "event_queue": "0",
                "query_queue": "0",
                "encrypted": "true" if self._encrypted else "false",
                **self._coordinate_resets(),
            },
            "tags": dict(self._tags),
            # Serf's five sections exactly (`serf info` prints every section it gets):
            # our health facts are in `explain`, which `swimguard info` also asks.
            "event_handlers": {},
        }
