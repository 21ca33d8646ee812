"""`swimguard members|join|leave|event|tags|monitor|info`: Serf's CLI commands over the RPC.

(`force-leave|query|keys|rtt|reachability` live in `cli_cluster`.)

Each command takes serf's flags (`-rpc-addr`, `-rpc-auth`, `-format text|json`; `--flag`
works too, and so does `SERF_RPC_ADDR`/`SERF_RPC_AUTH`) and prints what `serf` prints, so
scripts written for `serf members` work with `swimguard members`, against a swimguard or a
serf agent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final, NoReturn

from swimguard.rpc import cli_cluster
from swimguard.rpc.client import Client, MemberInfo, RpcClientError, StreamEvent
from swimguard.rpc.explain_cmd import run_explain, speaks_explain, stats_health
from swimguard.rpc.watch import add_watch_flags, run_watch

__all__ = ["COMMANDS", "main"]

COMMANDS: Final = (
    "members", "join", "leave", "event", "tags", "monitor", "info", *cli_cluster.COMMANDS
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message}\n")


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """A serf-style flag: `-name` and `--name` (both with `=value` or a separate value)."""
    parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"swimguard {command}", allow_abbrev=False)
    _flag(parser, "rpc-addr", default=os.environ.get("SERF_RPC_ADDR", "127.0.0.1:7373"))
    _flag(parser, "rpc-auth", default=os.environ.get("SERF_RPC_AUTH", ""))
    if command in ("members", "info", "explain"):
        _flag(parser, "format", choices=["text", "json"], default="text")
    if command == "members":
        _flag(parser, "detailed", action="store_true")
        _flag(parser, "status", default="")
        _flag(parser, "name", default="")
        _flag(parser, "role", default="")
        _flag(parser, "tag", action="append", default=[], metavar="KEY=REGEXP")
        add_watch_flags(parser)
    elif command == "explain":
        parser.add_argument("name")
    elif command == "join":
        _flag(parser, "replay", action="store_true")
        parser.add_argument("addresses", nargs="+")
    elif command == "event":
        _flag(parser, "coalesce", type=_bool, nargs="?", const=True, default=True)
        parser.add_argument("name")
        parser.add_argument("payload", nargs="?")
    elif command == "tags":
        _flag(parser, "set", action="append", default=[], metavar="KEY=VALUE")
        _flag(parser, "delete", action="append", default=[], metavar="KEY")
    elif command == "monitor":
        _flag(parser, "log-level", default="INFO")
    cli_cluster.add_flags(parser, command, _flag)
    return parser


def _split_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 7373
    return host.strip("[]"), int(port)


def _columns(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart (serf's columnize)."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _member_json(m: MemberInfo) -> dict[str, Any]:
    host = f"[{m.addr}]" if ":" in m.addr else m.addr
    return {
        "name": m.name,
        "addr": f"{host}:{m.port}",
        "port": m.port,
        "tags": dict(sorted(m.tags.items())),
        "status": m.status,
        "protocol": {"max": m.delegate[1], "min": m.delegate[0], "version": m.delegate[2]},
    }


async def _members(client: Client, args: argparse.Namespace) -> int:
    tags: dict[str, str] = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"Invalid tag '{item}' provided", file=sys.stderr)
            return 1
        tags[key] = value
    if args.role:
        tags["role"] = args.role
    if args.watch:
        return await run_watch(
            client, lambda: client.members(name=args.name, status=args.status, tags=tags),
            interval=args.interval, count=args.count,
        )
    members = await client.members(name=args.name, status=args.status, tags=tags)
    if args.format == "json":
        listed = [_member_json(m) for m in members] or None
        print(json.dumps({"members": listed}, indent=2))
        return 0
    rows = []
    for m in members:
        host = f"[{m.addr}]" if ":" in m.addr else m.addr
        tag_text = ",".join(f"{k}={v}" for k, v in m.tags.items())
        row = [m.name, f"{host}:{m.port}", m.status, tag_text]
        if args.detailed:
            row.append(f"Protocol Version: {m.delegate[2]}")
            row.append(f"Available Protocol Range: [{m.delegate[0]}, {m.delegate[1]}]")
        rows.append(row)
    print(_columns(rows))
    return 0


async def _join(client: Client, args: argparse.Namespace) -> int:
    try:
        num = await client.join(args.addresses, replay=args.replay)
    except RpcClientError as exc:
        print(f"Error joining the cluster: {exc}")
        return 1
    print(f"Successfully joined cluster by contacting {num} nodes.")
    return 0


async def _leave(client: Client, args: argparse.Namespace) -> int:
    del args
    try:
        await client.leave()
    except RpcClientError as exc:
        print(f"Error leaving: {exc}")
        return 1
    print("Graceful leave complete")
    return 0


async def _event(client: Client, args: argparse.Namespace) -> int:
    payload = args.payload.encode() if args.payload is not None else b""
    try:
        await client.event(args.name, payload, coalesce=args.coalesce)
    except RpcClientError as exc:
        print(f"Error sending event: {exc}")
        return 1
    coalescing = "true" if args.coalesce else "false"
    print(f"Event '{args.name}' dispatched! Coalescing enabled: {coalescing}")
    return 0


async def _tags(client: Client, args: argparse.Namespace) -> int:
    tags: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"Invalid tag '{item}' provided")
            return 1
        tags[key] = value
    if not tags and not args.delete:
        print("At least one tag to set or delete is required")
        return 1
    try:
        await client.tags(set=tags, delete=args.delete)
    except RpcClientError as exc:
        print(f"Error setting tags: {exc}")
        return 1
    print("Successfully updated agent tags")
    return 0


async def _info(client: Client, args: argparse.Namespace) -> int:
    stats = await client.stats()
    if speaks_explain(stats):
        # Our agent's health is not in `stats` (serf's exact sections, for `serf info`):
        # ask `explain` of ourselves and show it as one more section.
        own = stats.get("agent", {}).get("name", "")
        with contextlib.suppress(RpcClientError):
            health = stats_health(await client.explain(own))
            if health:
                stats = {**stats, "health": health}
    if args.format == "json":
        print(json.dumps(stats, indent=2, sort_keys=True))
        return 0
    for section in sorted(stats):
        print(f"{section}:")
        for key, value in sorted(stats[section].items()):
            print(f"\t{key} = {value}")
    return 0


def _go_bytes(data: bytes | None) -> str:
    """A payload the way serf's monitor prints it (Go's %#v of a []byte)."""
    if data is None:
        return "[]byte(nil)"
    return "[]byte{" + ", ".join(f"0x{b:x}" for b in data) + "}"


def _event_info(event: StreamEvent) -> str:
    """A stream record as `serf monitor` prints it: its fields in key order."""
    if event.members:
        members = ", ".join(
            f"{m.name} {m.addr}:{m.port} {m.status} {dict(m.tags)}" for m in event.members
        )
        fields = [f'Event: "{event.event}"', f"Members: [{members}]"]
    else:
        fields = [f"Coalesce: {'true' if event.coalesce else 'false'}", f'Event: "{event.event}"']
        if event.event == "query":
            fields.append(f"ID: {event.id}")
        fields += [f"LTime: {event.ltime}", f'Name: "{event.name}"',
                   f"Payload: {_go_bytes(event.payload)}"]
    return "\n".join(["Event Info:", *(f"\t{f}" for f in fields)])


async def _monitor(client: Client, args: argparse.Namespace) -> int:
    async with client.stream("*") as events, client.monitor(args.log_level) as lines:

        async def print_events() -> None:
            async for event in events:
                print(_event_info(event), flush=True)

        async def print_lines() -> None:
            async for line in lines:
                print(line, flush=True)

        await asyncio.gather(print_events(), print_lines())
    return 0


_RUN: Final[dict[str, Callable[[Client, argparse.Namespace], Coroutine[Any, Any, int]]]] = {
    "explain": run_explain,
    "members": _members,
    "join": _join,
    "leave": _leave,
    "event": _event,
    "tags": _tags,
    "monitor": _monitor,
    "info": _info,
    **cli_cluster.RUN,
}


OWN_COMMANDS: Final = ("explain",)
"""Ours, beside serf's: `explain` (`swimguard.rpc.explain_cmd`); members' `-watch` is a flag."""


async def _run(command: str, args: argparse.Namespace) -> int:
    host, port = _split_address(args.rpc_addr)
    try:
        async with Client(host, port, auth=args.rpc_auth) as client:
            return await _RUN[command](client, args)
    except RpcClientError as exc:
        if "cannot connect" in str(exc):
            print(f"Error connecting to Serf agent: {exc}")
        else:
            print(f"Error: {exc}")
        return 1


def main(argv: Sequence[str]) -> int:
    """`argv` = [command, flags...]; returns the exit status."""
    command, *rest = argv
    args = _parser(command).parse_args(rest)
    try:
        _split_address(args.rpc_addr)
    except ValueError:
        print(f"swimguard {command}: error: -rpc-addr {args.rpc_addr!r}: expected HOST:PORT")
        return 1
    complaint = cli_cluster.usage_error(command, args)
    if complaint is not None:
        print(complaint)
        return 1
    try:
        return asyncio.run(_run(command, args))
    except KeyboardInterrupt:
        status, last_words = cli_cluster.INTERRUPTED.get(command, (0, None))
        if last_words is not None:
            print(last_words)
        return status
