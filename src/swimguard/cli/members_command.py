"""`swimguard members` in its everyday form, over one blocking socket: no asyncio, no RPC client.

A user compares `swimguard members` with `serf members`, a Go binary that answers in a few
milliseconds (issue 17). Python's start alone costs more than that; asyncio, the general
RPC client and argparse would add several times as much again. So the plain listing takes
this path: serf's flags (`-rpc-addr -rpc-auth -format -detailed -status -name -role -tag`,
as `-flag value`, `-flag=value` or with `--`), one connection, handshake, `auth` if a token
is given, `members-filtered`, the table or the JSON.

Anything else returns None and the caller runs the general command (`swimguard.rpc.cli`),
which owns every error message: help, a flag or value this parser does not take, `-watch`,
an agent that cannot be reached or answers with an error, a reply that is not what it
should be. Nothing is printed before the whole output is ready, so falling back never
prints twice, and asking again is harmless (`members` only reads). Output and exit status
are thus the general command's, line for line: tests/cli/test_cli_members.py runs both on
the same flags and compares them.
"""

from __future__ import annotations

import os
import socket

import msgpack

# No `typing` (nor the `re` it loads) at run time; type checkers take TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, Final

__all__ = ["run_members"]

_VALUE_FLAGS: Final = frozenset({"rpc-addr", "rpc-auth", "format", "status", "name", "role", "tag"})
_BOOL_FLAGS: Final = frozenset({"detailed"})
_MAX_REPLY: Final = 64 * 1024 * 1024  # the general client's bound: a large cluster's list
_RPC_PORT: Final = 7373


def run_members(argv: Sequence[str]) -> int | None:
    """`swimguard members ARGV...`: the exit status, or None for the general command."""
    flags = _parse(argv)
    if flags is None:
        return None
    try:
        output = _list(flags)
    except Exception:  # whatever it is, the general command says it in its own words
        return None
    if output is None:
        return None
    print(output)
    return 0


def _parse(argv: Sequence[str]) -> dict[str, Any] | None:
    """The flags, parsed as the general command's argparse does; None when unsure."""
    flags: dict[str, Any] = {
        "rpc-addr": os.environ.get("SERF_RPC_ADDR", f"127.0.0.1:{_RPC_PORT}"),
        "rpc-auth": os.environ.get("SERF_RPC_AUTH", ""),
        "format": "text", "status": "", "name": "", "role": "", "tag": [], "detailed": False,
    }
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            return None  # a positional: the general parser refuses it
        key, has_value, value = arg.removeprefix("-").removeprefix("-").partition("=")
        if key in _BOOL_FLAGS and not has_value:
            flags[key] = True
            continue
        if key not in _VALUE_FLAGS:
            return None  # -h, -watch, -detailed=x, `--`, an unknown flag...
        if not has_value:
            if i >= len(argv) or argv[i].startswith("-"):
                return None  # argparse would take it for a flag
            value = argv[i]
            i += 1
        if key == "tag":
            flags["tag"].append(value)
        else:
            flags[key] = value
    if flags["format"] not in ("text", "json"):
        return None
    return flags


def _list(flags: Mapping[str, Any]) -> str | None:
    """The command's whole output, or None when the general command must answer."""
    tags: dict[str, str] = {}
    for item in flags["tag"]:
        key, sep, value = item.partition("=")
        if not sep:
            return None  # "Invalid tag ..." is the general command's
        tags[key] = value
    if flags["role"]:
        tags["role"] = flags["role"]
    host, sep, port_text = flags["rpc-addr"].rpartition(":")
    address = (host.strip("[]"), int(port_text)) if sep else (flags["rpc-addr"], _RPC_PORT)
    requests: list[tuple[str, dict[str, Any], bool]] = [("handshake", {"Version": 1}, False)]
    if flags["rpc-auth"]:
        requests.append(("auth", {"AuthKey": flags["rpc-auth"]}, False))
    filters = {"Name": flags["name"], "Status": flags["status"], "Tags": tags}
    requests.append(("members-filtered", filters, True))
    # As bytes, the host skips Python's IDNA codec (and the unicodedata it loads); a name
    # that is not ASCII is the general command's.
    with socket.create_connection((address[0].encode("ascii"), address[1])) as sock:
        replies = _Replies(sock)
        body: object = None
        # One request at a time, each answered before the next, as the general client does.
        for seq, (command, request, has_body) in enumerate(requests):
            sock.sendall(_pack({"Command": command, "Seq": seq}) + _pack(request))
            header = replies.next()
            if not isinstance(header, dict) or header.get("Seq") != seq or header.get("Error"):
                return None
            body = replies.next() if has_body else None
    if not isinstance(body, dict):
        return None
    members = [_Member(raw) for raw in body.get("Members") or ()]
    if flags["format"] == "json":
        import json

        listed = [member.json() for member in members] or None
        return json.dumps({"members": listed}, indent=2)
    return _columns([member.row(detailed=flags["detailed"]) for member in members])


def _pack(obj: object) -> bytes:
    """New-spec msgpack, as `swimguard.rpc.codec.pack` (not imported: it loads `typing`)."""
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


class _Replies:
    """The agent's msgpack objects, one after the other, from a blocking socket; decoded
    as the general client's `FrameReader` does (bounded; any decoding error ends the call,
    and the general command reports it)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=_MAX_REPLY, unicode_errors="strict"
        )

    def next(self) -> object:
        while True:
            try:
                return self._unpacker.unpack()
            except msgpack.OutOfData:
                pass
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the agent")
            self._unpacker.feed(data)


class _Member:
    """One member of the reply, read as the general client's `MemberInfo.from_wire`."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        import ipaddress  # only once there is a member to show

        try:
            addr = str(ipaddress.ip_address(bytes(raw.get("Addr") or b"")))
        except ValueError:
            addr = ""
        self.name = str(raw.get("Name", ""))
        self.addr = addr.removeprefix("::ffff:")
        self.port = int(raw.get("Port", 0))
        self.status = str(raw.get("Status", ""))
        self.tags = dict(raw.get("Tags") or {})
        self.delegate = tuple(
            int(raw.get(key, 0)) for key in ("DelegateMin", "DelegateMax", "DelegateCur")
        )

    def _host_port(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"{host}:{self.port}"

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "addr": self._host_port(),
            "port": self.port,
            "tags": dict(sorted(self.tags.items())),
            "status": self.status,
            "protocol": {
                "max": self.delegate[1], "min": self.delegate[0], "version": self.delegate[2]
            },
        }

    def row(self, *, detailed: bool) -> list[str]:
        tag_text = ",".join(f"{k}={v}" for k, v in self.tags.items())
        row = [self.name, self._host_port(), self.status, tag_text]
        if detailed:
            row.append(f"Protocol Version: {self.delegate[2]}")
            row.append(f"Available Protocol Range: [{self.delegate[0]}, {self.delegate[1]}]")
        return row


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
