"""What each RPC command does: one function per command, looked up in `HANDLERS`.

Each takes the client's `Connection`, the request's sequence number and its decoded body,
and answers with `conn.reply` (streams, monitors and queries also leave the connection
subscribed to records). Adding a command is one function and one table entry.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import re2

from swimguard.rpc.backend import BackendError, KeyCommand, QueryItemKind
from swimguard.rpc.codec import ProtocolViolation, pack, sorted_map
from swimguard.rpc.commands import IPC_VERSION, Command, RpcError
from swimguard.rpc.event_filter import EventKind, StreamRecord, parse_event_filter
from swimguard.rpc.explain_cmd import UNKNOWN_MEMBER
from swimguard.rpc.log_ring import LogLevel
from swimguard.rpc.members import RpcMember

if TYPE_CHECKING:
    from swimguard.rpc.connection import Connection

__all__ = ["HANDLERS", "Handler", "user_record"]

log = logging.getLogger("swimguard.rpc")

_RESPOND_FAILED: Final = "failed to respond to key query: {}"
"""Serf's text for every respond failure (it says "key query" for all queries)."""

Handler = Callable[["Connection", int, dict[str, Any]], Awaitable[None]]


async def handshake(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    if conn.version != 0:
        await conn.reply(seq, RpcError.DUPLICATE_HANDSHAKE)
    elif body["Version"] != IPC_VERSION:
        await conn.reply(seq, RpcError.UNSUPPORTED_VERSION)
    else:
        conn.version = IPC_VERSION
        await conn.reply(seq)


async def auth(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    if hmac.compare_digest(body["AuthKey"].encode(), conn.server.auth_key.encode()):
        conn.authenticated = True
        await conn.reply(seq)
    else:
        await conn.reply(seq, RpcError.INVALID_AUTH)


async def members(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    del body
    members = [m.to_wire() for m in conn.server.backend.members()]
    await conn.reply(seq, body={"Members": members})


async def members_filtered(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    tags: dict[str, str] = body["Tags"] or {}
    try:
        # Serf anchors by concatenation ("^" + p + "$"); RE2's "$" is end of text, as Go's.
        tag_res = {k: _anchored(p) for k, p in tags.items()}
        status_re = _anchored(body["Status"]) if body["Status"] else None
        name_re = _anchored(body["Name"]) if body["Name"] else None
    except re2.error as exc:
        # Serf hangs up without a reply here; the log says why.
        raise ProtocolViolation(f"Failed to compile regex: {exc}") from None

    def keep(m: RpcMember) -> bool:
        if status_re is not None and not status_re.search(m.status.value):
            return False
        if name_re is not None and not name_re.search(m.name):
            return False
        return all(r.search(m.tags.get(k, "")) for k, r in tag_res.items())

    members = [m.to_wire() for m in conn.server.backend.members() if keep(m)]
    await conn.reply(seq, body={"Members": members})


async def join(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    limit = conn.server.limits.max_join_addresses
    if len(body["Existing"] or []) > limit:
        await conn.reply(seq, f"at most {limit} addresses per join", {"Num": 0})
        return
    try:
        num = await conn.server.backend.join(body["Existing"] or [], replay=body["Replay"])
    except BackendError as exc:
        await conn.reply(seq, str(exc), {"Num": 0})
    else:
        await conn.reply(seq, body={"Num": num})


async def leave(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    del body
    try:
        await conn.server.backend.leave()
    except BackendError as exc:
        await conn.reply(seq, str(exc))
        return
    await conn.reply(seq)
    if conn.server.on_leave is not None:
        conn.server.on_leave()


async def event(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    name: str = body["Name"]
    payload: bytes | None = body["Payload"]
    coalesce: bool = body["Coalesce"]
    try:
        ltime = conn.server.backend.user_event(name, payload or b"", coalesce=coalesce)
    except BackendError as exc:
        await conn.reply(seq, str(exc))
        return
    await conn.reply(seq)
    # Serf delivers our own user events to our own streams too.
    conn.server.publish(user_record(name, payload, ltime, coalesce))


async def tags(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    tags = dict(conn.server.backend.tags)
    for key in body["DeleteTags"] or []:
        tags.pop(key, None)
    tags.update(body["Tags"] or {})
    try:
        await conn.server.backend.set_tags(tags)
    except BackendError as exc:
        await conn.reply(seq, str(exc))
    else:
        await conn.reply(seq)


async def stream(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    event_filter = parse_event_filter(body["Type"])
    if event_filter is None:
        await conn.reply(seq, RpcError.INVALID_FILTER)
    elif seq in conn.streams:
        await conn.reply(seq, RpcError.STREAM_EXISTS)
    elif len(conn.streams) >= conn.server.limits.max_streams:
        await conn.reply(seq, f"at most {conn.server.limits.max_streams} streams per client")
    else:
        await conn.reply(seq)
        conn.streams[seq] = event_filter


async def monitor(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    wanted = body["LogLevel"].upper()
    try:
        level = LogLevel[wanted]
    except KeyError:
        await conn.reply(seq, f"Unknown log level: {wanted}")
        return
    ring = conn.server.log_ring
    if conn.monitoring is not None:
        await conn.reply(seq, RpcError.MONITOR_EXISTS)
    elif ring is None:
        await conn.reply(seq, "this agent keeps no log")
    else:
        await conn.reply(seq)
        subscription = ring.subscribe(level, conn.log_sink(seq))
        conn.monitoring = (seq, subscription)


async def stop(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    target: int = body["Stop"]
    conn.streams.pop(target, None)
    if conn.monitoring is not None and conn.monitoring[0] == target:
        conn.unsubscribe()
    await conn.reply(seq)


async def stats(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    del body
    await conn.reply(seq, body=conn.server.backend.stats())


async def respond(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    conn.expire_queries()
    shared = conn.queries.get(body["ID"])
    if shared is None:
        await conn.reply(seq, RpcError.NO_PENDING_QUERY)
        return
    if shared.answered:
        await conn.reply(seq, _RESPOND_FAILED.format("response already sent"))
        return
    try:
        conn.server.backend.respond(shared.query, body["Payload"] or b"")
    except BackendError as exc:  # Serf's full text
        await conn.reply(seq, str(exc))
        return
    shared.answered = True
    await conn.reply(seq)


async def force_leave(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    try:
        conn.server.backend.force_leave(body["Node"], prune=body["Prune"])
    except BackendError as exc:
        await conn.reply(seq, str(exc))
    else:
        await conn.reply(seq)


async def query(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    """Send a query; its acks, responses and one `done` follow as records of `seq`."""
    if len(conn.sent_queries) >= conn.server.limits.max_queries:
        await conn.reply(seq, f"at most {conn.server.limits.max_queries} queries at a time")
        return
    timeout_ns: int = body["Timeout"]
    try:
        items = conn.server.backend.query(
            body["Name"],
            body["Payload"] or b"",
            filter_nodes=body["FilterNodes"] or [],
            filter_tags=body["FilterTags"] or {},
            request_ack=body["RequestAck"],
            relay_factor=min(body["RelayFactor"], 255),
            timeout=timeout_ns / 1e9 if timeout_ns > 0 else None,
        )
    except BackendError as exc:
        await conn.reply(seq, str(exc))
        return
    await conn.reply(seq)
    task = asyncio.create_task(_forward_query(conn, seq, items))
    conn.sent_queries.add(task)
    task.add_done_callback(conn.sent_queries.discard)


async def _forward_query(
    conn: Connection, seq: int, items: AsyncIterator[tuple[QueryItemKind, str, bytes | None]]
) -> None:
    head = pack(sorted_map(Error="", Seq=seq))
    try:
        async for kind, sender, payload in items:
            record = sorted_map(From=sender, Payload=payload, Type=kind.value)
            conn.enqueue(head + pack(record))
    except Exception:  # the agent closed under the query: no records, still a done
        log.debug("RPC query %d ended early", seq, exc_info=True)
    conn.enqueue(head + pack(sorted_map(From="", Payload=None, Type=QueryItemKind.DONE.value)))


async def keys(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    """install-key, use-key, remove-key, list-keys: Serf's key manager over the cluster."""
    command = KeyCommand(str(conn.last_command))
    result = await conn.server.backend.key_command(command, body.get("Key", ""))
    listing = command is KeyCommand.LIST
    reply = sorted_map(
        Keys=dict(result.keys) if listing else None,
        Messages=dict(result.messages),
        NumErr=result.num_err,
        NumNodes=result.num_nodes,
        NumResp=result.num_resp,
    )
    await conn.reply(seq, result.error, reply)


async def get_coordinate(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    """The node's coordinate; for an unknown node (or none kept), Serf's zero one."""
    coord = conn.server.backend.coordinate(body["Node"])
    if coord is None:
        zero = sorted_map(Adjustment=0.0, Error=0.0, Height=0.0, Vec=None)
        await conn.reply(seq, body={"Coord": zero, "Ok": False})
    else:
        await conn.reply(seq, body={"Coord": dict(coord), "Ok": True})


async def explain(conn: Connection, seq: int, body: dict[str, Any]) -> None:
    """Ours: the agent's explanation of a member (always with a body, as Serf's replies)."""
    try:
        data = conn.server.backend.explain(body["Name"])
    except BackendError as exc:
        await conn.reply(seq, str(exc), {})
        return
    if data is None:
        await conn.reply(seq, UNKNOWN_MEMBER.format(body["Name"]), {})
    else:
        await conn.reply(seq, body=data)


HANDLERS: Final[Mapping[Command, Handler]] = {
    Command.HANDSHAKE: handshake,
    Command.AUTH: auth,
    Command.EVENT: event,
    Command.FORCE_LEAVE: force_leave,
    Command.JOIN: join,
    Command.MEMBERS: members,
    Command.MEMBERS_FILTERED: members_filtered,
    Command.TAGS: tags,
    Command.STREAM: stream,
    Command.MONITOR: monitor,
    Command.STOP: stop,
    Command.LEAVE: leave,
    Command.QUERY: query,
    Command.RESPOND: respond,
    Command.INSTALL_KEY: keys,
    Command.USE_KEY: keys,
    Command.REMOVE_KEY: keys,
    Command.LIST_KEYS: keys,
    Command.STATS: stats,
    Command.GET_COORDINATE: get_coordinate,
    Command.EXPLAIN: explain,
}
"""What each command does; every `Command` has an entry (checked by the tests)."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _anchored(pattern: str) -> Any:
    return re2.compile("^" + pattern + "$", _RE2_OPTIONS)


def user_record(name: str, payload: bytes | None, ltime: int, coalesce: bool) -> StreamRecord:
    """The stream record of a user event (a nil payload stays nil)."""
    body = sorted_map(Coalesce=coalesce, Event="user", LTime=ltime, Name=name, Payload=payload)
    return StreamRecord(EventKind.USER, name, body)
