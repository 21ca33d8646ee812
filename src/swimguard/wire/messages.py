"""Typed memberlist messages: one frozen dataclass per msgpack body.

Attributes are snake_case; each class's FIELDS maps them to Go's keys (see
`msgpack_body`, which encodes and decodes them byte-compatibly with go-msgpack).
`bytes | None` attributes keep Go's nil/empty distinction (nil -> 0xC0, empty ->
0xA0) because captured vectors show both; plain `bytes` attributes decode nil
as b"".
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar, Final

from swimguard.wire.msgpack_body import (
    MAX_ARRAY_LEN,
    MAX_MAP_LEN,
    Body,
    body_from_map,
    body_map,
    decode_body,
    decoder_for,
    encode_body,
    maker_for,
    unpack,
)

__all__ = [
    "MAX_ARRAY_LEN",
    "MAX_MAP_LEN",
    "VSN_LEN",
    "AckResp",
    "Alive",
    "Body",
    "Compress",
    "Dead",
    "ErrResp",
    "IndirectPingReq",
    "MessageType",
    "NackResp",
    "NodeState",
    "Ping",
    "PushNodeState",
    "PushPullHeader",
    "Suspect",
    "UserMsgHeader",
    "body_from_map",
    "body_map",
    "decode_body",
    "decoder_for",
    "encode_body",
    "maker_for",
    "unpack",
]


class MessageType(enum.IntEnum):
    """First byte of every memberlist message. Wire protocol: append only."""

    PING = 0
    INDIRECT_PING = 1
    ACK = 2
    SUSPECT = 3
    ALIVE = 4
    DEAD = 5
    PUSH_PULL = 6
    COMPOUND = 7
    USER = 8
    COMPRESS = 9
    ENCRYPT = 10
    NACK = 11
    HAS_CRC = 12
    ERR = 13
    HAS_LABEL = 244


class NodeState(enum.IntEnum):
    """Member state as carried in push/pull. Wire protocol: append only."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


VSN_LEN: Final = 6


@dataclasses.dataclass(frozen=True, slots=True)
class Ping(Body):
    """`ping` (type 0): probe of `node` ("" = whoever receives it)."""

    seq_no: int
    node: str = ""
    source_addr: bytes = b""
    source_node: str = ""
    source_port: int = 0
    FIELDS: ClassVar = (
        ("Node", "node", "str", False),
        ("SeqNo", "seq_no", "u32", False),
        ("SourceAddr", "source_addr", "bytes", True),
        ("SourceNode", "source_node", "str", True),
        ("SourcePort", "source_port", "u16", True),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class IndirectPingReq(Body):
    """`indirectPingReq` (type 1): ask a peer to probe `target:port` for us."""

    seq_no: int
    target: bytes
    port: int
    node: str = ""
    nack: bool = False
    source_addr: bytes = b""
    source_node: str = ""
    source_port: int = 0
    FIELDS: ClassVar = (
        ("Nack", "nack", "bool", False),
        ("Node", "node", "str", False),
        ("Port", "port", "u16", False),
        ("SeqNo", "seq_no", "u32", False),
        ("SourceAddr", "source_addr", "bytes", True),
        ("SourceNode", "source_node", "str", True),
        ("SourcePort", "source_port", "u16", True),
        ("Target", "target", "bytes", False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class AckResp(Body):
    """`ackResp` (type 2); `payload` comes from the ping hook (Serf: coordinates)."""

    seq_no: int
    payload: bytes | None = None
    FIELDS: ClassVar = (
        ("Payload", "payload", "nbytes", False),
        ("SeqNo", "seq_no", "u32", False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class NackResp(Body):
    """`nackResp` (type 11): an indirect prober got no ack in time."""

    seq_no: int
    FIELDS: ClassVar = (("SeqNo", "seq_no", "u32", False),)


@dataclasses.dataclass(frozen=True, slots=True)
class ErrResp(Body):
    """`errResp` (type 13): the stream peer could not handle our request."""

    error: str
    FIELDS: ClassVar = (("Error", "error", "str", False),)


@dataclasses.dataclass(frozen=True, slots=True)
class Suspect(Body):
    """`suspect` (type 3): `from_` suspects `node` at `incarnation`."""

    incarnation: int
    node: str
    from_: str
    FIELDS: ClassVar = (
        ("From", "from_", "str", False),
        ("Incarnation", "incarnation", "u32", False),
        ("Node", "node", "str", False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Alive(Body):
    """`alive` (type 4): `node` is alive at `incarnation`, reachable at addr:port."""

    incarnation: int
    node: str
    addr: bytes
    port: int
    meta: bytes | None = None
    vsn: bytes = b""
    FIELDS: ClassVar = (
        ("Addr", "addr", "bytes", False),
        ("Incarnation", "incarnation", "u32", False),
        ("Meta", "meta", "nbytes", False),
        ("Node", "node", "str", False),
        ("Port", "port", "u16", False),
        ("Vsn", "vsn", "bytes", False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Dead(Body):
    """`dead` (type 5); `from_ == node` means a graceful leave."""

    incarnation: int
    node: str
    from_: str
    FIELDS: ClassVar = (
        ("From", "from_", "str", False),
        ("Incarnation", "incarnation", "u32", False),
        ("Node", "node", "str", False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class PushPullHeader(Body):
    """Header of a push/pull stream (after the 0x06 type byte)."""

    nodes: int
    user_state_len: int
    join: bool = False
    FIELDS: ClassVar = (
        ("Join", "join", "bool", False),
        ("Nodes", "nodes", "int", False),
        ("UserStateLen", "user_state_len", "int", False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class PushNodeState(Body):
    """One member as carried in push/pull; note Go's key is `Name`, not `Node`."""

    name: str
    addr: bytes
    port: int
    incarnation: int
    state: int
    meta: bytes | None = None
    vsn: bytes = b""
    FIELDS: ClassVar = (
        ("Addr", "addr", "bytes", False),
        ("Incarnation", "incarnation", "u32", False),
        ("Meta", "meta", "nbytes", False),
        ("Name", "name", "str", False),
        ("Port", "port", "u16", False),
        ("State", "state", "int", False),
        ("Vsn", "vsn", "bytes", False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class UserMsgHeader(Body):
    """Header of a reliable (TCP) user message; the raw bytes follow it."""

    user_msg_len: int
    FIELDS: ClassVar = (("UserMsgLen", "user_msg_len", "int", False),)


@dataclasses.dataclass(frozen=True, slots=True)
class Compress(Body):
    """`compress` (type 9): `buf` is LZW of a whole message; algo 0 = LZW."""

    buf: bytes
    algo: int = 0
    FIELDS: ClassVar = (
        ("Algo", "algo", "u8", False),
        ("Buf", "buf", "bytes", False),
    )
