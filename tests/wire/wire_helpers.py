"""Shared helpers for the wire tests: vector loading and field comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swimguard.wire import (
    AckResp,
    Alive,
    Dead,
    ErrResp,
    IndirectPingReq,
    NackResp,
    Ping,
    PushNodeState,
    PushPullHeader,
    Suspect,
    UserData,
)
from swimguard.wire.messages import Body

# The repository carries its own copy of the recorded vectors (tests/vectors/data/README.md).
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "data"

# The "type" names the vector files use for each memberlist message.
TYPE_NAMES: dict[str, type[Body]] = {
    "ping": Ping,
    "indirectPing": IndirectPingReq,
    "ack": AckResp,
    "nack": NackResp,
    "suspect": Suspect,
    "alive": Alive,
    "dead": Dead,
    "err": ErrResp,
}


def load(name: str) -> Any:
    """One vector file, parsed."""
    return json.loads((VECTORS / name).read_text())


def json_value(value: Any) -> Any:
    """A vector's JSON value as Python: "hex:.." strings become bytes."""
    if isinstance(value, str) and value.startswith("hex:"):
        return bytes.fromhex(value[4:])
    return value


def assert_fields(msg: Body, body: dict[str, Any]) -> None:
    """Every Go key of a recorded body matches the decoded attribute.

    Go's nil and empty byte slices are kept apart on nullable fields
    (`Meta`, `Payload`); elsewhere nil reads as empty, like Go's zero value.
    """
    fields = {key: (attr, kind) for key, attr, kind, _omit in type(msg).FIELDS}
    assert set(body) <= set(fields), f"unknown keys in vector: {set(body) - set(fields)}"
    for key, raw in body.items():
        attr, kind = fields[key]
        expected = json_value(raw)
        got = getattr(msg, attr)
        if kind == "nbytes":
            assert got == (None if expected is None else (expected or b"")), key
        elif kind == "bytes":
            assert got == (expected or b""), key
        else:
            assert got == expected, key
    for key, (attr, _kind) in fields.items():
        if key not in body:  # absent (omitempty) keys decode to the zero value
            assert getattr(msg, attr) in (0, "", b"", False, None), key


def flatten(decoded: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """The flat (type name, body) list a vector's "decoded" tree stands for."""
    kind = decoded["type"]
    if kind in ("hasCrc", "compress", "compress(stream)"):
        return flatten(decoded["inner"])
    if kind == "compound":
        out: list[tuple[str, dict[str, Any] | None]] = []
        for part in decoded["parts"]:
            out.extend(flatten(part))
        return out
    if kind == "user":
        return [("user", None)]
    return [(kind, decoded["body"])]


def assert_matches(messages: list[Any], decoded: dict[str, Any]) -> None:
    """Decoded messages equal the vector's recorded tree, field by field."""
    expected = flatten(decoded)
    assert len(messages) == len(expected)
    for msg, (kind, body) in zip(messages, expected, strict=True):
        if kind == "user":
            assert isinstance(msg, UserData)
            assert msg.data  # the Serf payload, opaque to the codec
            continue
        assert type(msg) is TYPE_NAMES[kind]
        assert body is not None
        assert_fields(msg, body)


def push_node_state(body: dict[str, Any]) -> PushNodeState:
    """Build the expected PushNodeState of a recorded node entry."""
    return PushNodeState(
        name=body["Name"],
        addr=json_value(body["Addr"]),
        port=body["Port"],
        incarnation=body["Incarnation"],
        state=body["State"],
        meta=None if body["Meta"] is None else (json_value(body["Meta"]) or b""),
        vsn=json_value(body["Vsn"]),
    )


def push_pull_header(body: dict[str, Any]) -> PushPullHeader:
    """Build the expected PushPullHeader of a recorded header."""
    return PushPullHeader(
        nodes=body["Nodes"], user_state_len=body["UserStateLen"], join=body["Join"]
    )


def pack_codes(codes: list[int]) -> bytes:
    """Pack codes LSB-first with Go's width rules (a clear resets to 9 bits, 12 at most)."""
    out = bytearray()
    acc = nbits = 0
    width, hi, overflow = 9, 257, 512
    for code in codes:
        acc |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
        if code == 256:
            width, hi, overflow = 9, 257, 512
        elif code != 257:
            hi += 1
            if hi == overflow and width < 12:
                width += 1
                overflow <<= 1
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)
