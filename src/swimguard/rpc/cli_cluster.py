"""`swimguard force-leave|query|keys|rtt|reachability`: Serf's cluster-wide CLI commands.

Same flags and the same output, line for line, as Debian's `serf` 0.9.4 (spec serf-rpc.md
§5.1), so that scripts parsing `serf query` or `serf keys -list` work unchanged. `serf` prints
its errors on stdout too, and so do these.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

from swimguard.rpc.client import Client, KeyReport, RpcClientError

__all__ = ["COMMANDS", "RUN", "add_flags", "parse_duration", "usage_error"]

COMMANDS: Final = ("force-leave", "query", "keys", "rtt", "reachability")

INTERRUPTED: Final[Mapping[str, tuple[int, str | None]]] = {
    "query": (1, None),
    "reachability": (1, "Test interrupted"),
}
"""Exit status (and last line) of a command Ctrl-C stops, as serf's: it catches SIGINT, and
the two commands that wait on the cluster give up with status 1 (checked against
/usr/bin/serf 0.9.4); the others finish what they were doing (0)."""

_TROUBLESHOOTING: Final = """
Troubleshooting tips:
* Ensure that the bind addr:port is accessible by all other nodes
* If an advertise address is set, ensure it routes to the bind address
* Check that no nodes are behind a NAT
* If nodes are behind firewalls or iptables, check that Serf traffic is permitted (UDP and TCP)
* Verify networking equipment is functional"""
_TOO_MANY_ACKS: Final = (
    "This could mean Serf is detecting false-failures due to a misconfiguration or network issue."
)
_TOO_FEW_ACKS: Final = (
    "This could mean Serf gossip packets are being lost due to a misconfiguration or network "
    "issue."
)
_DUPLICATES: Final = (
    "Duplicate responses means there is a misconfiguration. Verify that node names are unique."
)

_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go duration (`15s`, `1m30s`, `250ms`, `0`) in seconds, as serf's `-timeout` takes it."""
    body = text.lstrip("+")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            raise argparse.ArgumentTypeError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise argparse.ArgumentTypeError(f'time: invalid duration "{text}"')
    return total


def add_flags(
    parser: argparse.ArgumentParser, command: str, flag: Callable[..., None]
) -> None:
    """`command`'s own flags and arguments (`flag` adds a `-name`/`--name` flag)."""
    if command == "force-leave":
        flag(parser, "prune", action="store_true")
        parser.add_argument("node", nargs="*")
    elif command == "query":
        flag(parser, "format", choices=["text", "json"], default="text")
        flag(parser, "node", action="append", default=[], metavar="NAME")
        flag(parser, "tag", action="append", default=[], metavar="KEY=REGEXP")
        flag(parser, "timeout", type=parse_duration, default=0.0)
        flag(parser, "no-ack", action="store_true")
        flag(parser, "relay-factor", type=int, default=0)
        parser.add_argument("words", nargs="*", metavar="NAME [PAYLOAD]")
    elif command == "keys":
        flag(parser, "install", default="")
        flag(parser, "use", default="")
        flag(parser, "remove", default="")
        flag(parser, "list", action="store_true")
    elif command == "rtt":
        parser.add_argument("nodes", nargs="*", metavar="NODE")
    elif command == "reachability":
        flag(parser, "verbose", action="store_true")


def usage_error(command: str, args: argparse.Namespace) -> str | None:
    """serf's complaint about `command`'s arguments, checked before it connects; None if
    they are fine. (Where serf then prints its usage text, `--help` has ours.)"""
    if command == "force-leave" and len(args.node) != 1:
        return "A node name must be specified to force leave."
    if command == "query":
        if not args.words:
            return "A query name must be specified."
        if len(args.words) > 2:
            return "Too many command line arguments. Only a name and payload must be specified."
    if command == "rtt" and not 1 <= len(args.nodes) <= 2:
        return "One or two node names must be specified"
    if command == "keys":
        chosen = [name for name in ("install", "use", "remove", "list") if getattr(args, name)]
        if len(chosen) > 1:
            return "Only one of -install, -use, -remove, or -list allowed"
        if not chosen:
            return "Usage: swimguard keys [-install=KEY | -use=KEY | -remove=KEY | -list]"
    return None


async def _force_leave(client: Client, args: argparse.Namespace) -> int:
    try:
        (node,) = args.node
        await client.force_leave(node, prune=args.prune)
    except RpcClientError as exc:
        print(f"Error force leaving: {exc}")
        return 1
    return 0


def _go_json(value: object) -> str:
    """JSON as Go's encoding/json indents it: HTML-safe escapes, non-ASCII kept."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _print_bytes(prefix: str, data: bytes) -> None:
    """A line with a raw payload: serf writes the bytes as they came, not re-encoded."""
    sys.stdout.flush()
    sys.stdout.buffer.write(prefix.encode() + data + b"\n")
    sys.stdout.buffer.flush()


async def _query(client: Client, args: argparse.Namespace) -> int:
    tags: dict[str, str] = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"Invalid tag '{item}' provided")
            return 1
        tags[key] = value
    if not 0 <= args.relay_factor <= 255:
        print("Relay factor must be between 0 and 255")
        return 1
    name, *rest = args.words
    payload = rest[0].encode() if rest else None
    answers = client.query(
        name, payload, filter_nodes=args.node, filter_tags=tags,
        request_ack=not args.no_ack, relay_factor=args.relay_factor, timeout=args.timeout,
    ).__aiter__()
    acks: list[str] = []
    responses: dict[str, str] = {}
    text = args.format == "text"
    started = False
    while True:
        try:
            answer = await answers.__anext__()
        except StopAsyncIteration:
            answer = None
        except RpcClientError as exc:
            if started:
                raise
            print(f"Error sending query: {exc}")
            return 1
        if not started and text:
            print(f"Query '{name}' dispatched", flush=True)
        started = True
        if answer is None:
            break
        if answer.type == "ack":
            acks.append(answer.from_)
            if text:
                print(f"Ack from '{answer.from_}'", flush=True)
        elif answer.type == "response":
            data = answer.payload or b""
            responses[answer.from_] = data.decode("utf-8", errors="replace")
            if text:
                # serf drops one trailing newline: handler scripts end their output with one.
                _print_bytes(f"Response from '{answer.from_}': ", data.removesuffix(b"\n"))
    if not text:
        print(_go_json({"Acks": acks or None, "Responses": dict(sorted(responses.items()))}))
        return 0
    if not args.no_ack:
        print(f"Total Acks: {len(acks)}")
    print(f"Total Responses: {len(responses)}")
    return 0


_KEY_WORDS: Final = {
    # flag: (announcement, success, error prefix)
    "install": ("Installing key on all members...", "Successfully installed key!",
                "Error installing key"),
    "use": ("Changing primary key on all members...", "Successfully changed primary key!",
            "Error changing primary key"),
    "remove": ("Removing key on all members...", "Successfully removed key!",
               "Error removing key"),
}


def _print_failures(report: KeyReport) -> None:
    from swimguard.rpc.cli import _columns  # lazy: cli imports this module

    if report.messages:
        rows = [["failed:", node, message] for node, message in sorted(report.messages.items())]
        print(_columns(rows))
    print()


async def _keys(client: Client, args: argparse.Namespace) -> int:
    from swimguard.rpc.cli import _columns  # lazy: cli imports this module

    if args.list:
        print("==> Asking all members for installed keys...", flush=True)
        report = await client.list_keys()
        if report.error:
            _print_failures(report)
            print(f"Failed to gather member keys: {report.error}")
            return 1
        print("==> Keys gathered, listing cluster keys...")
        print()
        rows = [[key, f"[{num}/{report.num_nodes}]"] for key, num in sorted(report.keys.items())]
        print(_columns(rows))
        return 0
    op = next(name for name in ("install", "use", "remove") if getattr(args, name))
    announce, success, failure = _KEY_WORDS[op]
    key = str(getattr(args, op))
    print(f"==> {announce}", flush=True)
    call = {"install": client.install_key, "use": client.use_key, "remove": client.remove_key}
    report = await call[op](key)
    if report.error:
        _print_failures(report)
        print(f"{failure}: {report.error}")
        return 1
    print(f"==> {success}")
    return 0


def _go_quote(text: str) -> str:
    """Go's %q for a printable name: a double-quoted string with backslash escapes."""
    return json.dumps(text, ensure_ascii=False)


async def _rtt(client: Client, args: argparse.Namespace) -> int:
    nodes = list(args.nodes)
    if len(nodes) == 1:
        # The second node defaults to the agent itself, whose name `stats` tells.
        nodes.append((await client.stats()).get("agent", {}).get("name", ""))
    coords = []
    for node in nodes:
        try:
            coord = await client.get_coordinate(node)
        except RpcClientError as exc:
            print(f"Error getting coordinates: {exc}")
            return 1
        if coord is None:
            print(f"Could not find a coordinate for node {_go_quote(node)}")
            return 1
        coords.append(coord)
    first, second = coords
    if len(first.vec) != len(second.vec):
        print("Error getting coordinates: coordinate dimensionality does not match")
        return 1
    # Go truncates the estimate to whole nanoseconds before printing milliseconds.
    nanos = int(first.distance_to(second) * 1e9)
    print(f"Estimated {nodes[0]} <-> {nodes[1]} rtt: {nanos / 1e6:.3f} ms")
    return 0


async def _reachability(client: Client, args: argparse.Namespace) -> int:
    try:
        members = await client.members()
    except RpcClientError as exc:
        print(f"Error getting members: {exc}")
        return 1
    live = {m.name for m in members if m.status == "alive"}
    print(f"Total members: {len(members)}, live members: {len(live)}", flush=True)
    answers = client.query("_serf_ping", None, request_ack=True).__aiter__()
    start = last = time.monotonic()
    acked: set[str] = set()
    num_acks = 0
    duplicates = False
    try:
        first = await answers.__anext__()
    except StopAsyncIteration:
        first = None
    except RpcClientError as exc:
        print(f"Error sending query: {exc}")
        return 1
    print("Starting reachability test...", flush=True)
    answer = first
    while answer is not None:
        if answer.type == "ack":
            if args.verbose:
                print(f"\tAck from '{answer.from_}'", flush=True)
            num_acks += 1
            if answer.from_ in acked:
                duplicates = True
                print(f"Duplicate response from '{answer.from_}'")
            acked.add(answer.from_)
            last = time.monotonic()
        answer = await anext(answers, None)
    if args.verbose:
        end = time.monotonic()
        print(f"Query time: {end - start:0.2f} sec, "
              f"time to last response: {last - start:0.2f} sec")
    status = 0
    if duplicates:
        print(_DUPLICATES)
        status = 1
    if num_acks == len(live):
        print("Successfully contacted all live nodes")
    elif num_acks > len(live):
        print("Received more acks than live nodes! Acks from non-live nodes:")
        for name in sorted(acked - live):
            print(f"\t{name}")
        print(_TOO_MANY_ACKS)
        print(_TROUBLESHOOTING)
        status = 1
    else:
        print("Received less acks than live nodes! Missing acks from:")
        for name in sorted(live - acked):
            print(f"\t{name}")
        print(_TOO_FEW_ACKS)
        print(_TROUBLESHOOTING)
        status = 1
    return status


RUN: Final[dict[str, Callable[[Client, argparse.Namespace], Coroutine[Any, Any, int]]]] = {
    "force-leave": _force_leave,
    "query": _query,
    "keys": _keys,
    "rtt": _rtt,
    "reachability": _reachability,
}
