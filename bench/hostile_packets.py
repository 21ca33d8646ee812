"""Hostile input for the hostile-input bench: mutated, random and crafted packets and streams.

Everything here is pure (bytes in, bytes out, one `random.Random`): the bench decides where
and how fast to send. Seeds are whole datagrams and TCP streams captured from real serf
agents (bench/data/hostile_seeds.json, copied from the project's vectors so a clone alone
can run the bench). Packets are built with msgpack and the project's own wire encoder;
where the encoder refuses a value on purpose (a name that is not UTF-8, a wrong-typed
field), the msgpack body is written by hand, as an attacker would.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgpack

from swimguard.wire import (
    Alive,
    Dead,
    DecodeError,
    Keyring,
    MessageType,
    PushNodeState,
    PushPullHeader,
    Suspect,
    decode_packet,
    encode_body,
    encode_message,
    encode_packet,
    frame_stream,
)
from swimguard.wire.compound import make_compound
from swimguard.wire.compression import compress_message, lzw_compress
from swimguard.wire.messages import (
    AckResp,
    Compress,
    ErrResp,
    IndirectPingReq,
    NackResp,
    Ping,
    UserMsgHeader,
)

SEEDS_PATH: Final = Path(__file__).with_name("data") / "hostile_seeds.json"
MIB: Final = 1024 * 1024
MAX_UDP: Final = 65507  # largest IPv4 UDP payload
U32_MAX: Final = 0xFFFF_FFFF

# Values a fuzzer likes to put in a byte: msgpack type markers and integer edges.
_INTERESTING_BYTES: Final = bytes(
    [
        0x00,
        0x01,
        0x7F,
        0x80,
        0x8F,
        0x90,
        0x9F,
        0xA0,
        0xBF,
        0xC0,
        0xC1,
        0xC2,
        0xC3,
        0xC4,
        0xC5,
        0xC6,
        0xCC,
        0xCD,
        0xCE,
        0xCF,
        0xD0,
        0xD3,
        0xD9,
        0xDA,
        0xDB,
        0xDC,
        0xDD,
        0xDE,
        0xDF,
        0xE0,
        0xFF,
        0x07,
        0x09,
        0x0A,
        0x0C,
        0xF4,
    ]
)

# Names that are not valid UTF-8 (or are valid but awkward), as raw msgpack str bytes.
BAD_NAMES: Final[tuple[bytes, ...]] = (
    b"\xff\xfe",
    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8 (invalid)
    b"\xc0\xaf",  # overlong '/'
    b"a\x80b",
    b"\xf8\x88\x80\x80\x80",
    b"ok\x00nul",  # valid UTF-8 with a NUL
    b"\xe2\x80\xae" + b"rtl",  # valid: right-to-left override
)


def _wrong_values() -> list[tuple[str, object]]:
    """One value of every msgpack kind, labelled; each field gets every wrong one."""
    return [
        ("nil", None),
        ("true", True),
        ("neg", -1),
        ("i64min", -(1 << 63)),
        ("u32max+1", 1 << 32),
        ("u64max", (1 << 64) - 1),
        ("float", 1.5),
        ("str", "x"),
        ("badutf8", _RawStr(b"\xff\xfe")),
        ("bin", b"\x00\x01"),
        ("longbin", b"\xaa" * 60_000),
        ("array", [1, "a"]),
        ("map", {"a": 1}),
        ("ext", msgpack.ExtType(5, b"ext")),
    ]


class _RawStr:
    """Bytes to be packed as a msgpack *str* (raw), whatever they hold."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _pack_str_raw(data: bytes) -> bytes:
    n = len(data)
    if n < 32:
        head = bytes([0xA0 | n])
    elif n < 0x100:
        head = b"\xd9" + bytes([n])
    elif n < 0x10000:
        head = b"\xda" + n.to_bytes(2, "big")
    else:
        head = b"\xdb" + n.to_bytes(4, "big")
    return head + data


def pack(obj: object) -> bytes:
    """msgpack with `_RawStr` for invalid-UTF-8 strs (msgpack-python cannot write those)."""
    if isinstance(obj, _RawStr):
        return _pack_str_raw(obj.data)
    if isinstance(obj, dict):
        n = len(obj)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big")
        return head + b"".join(pack(k) + pack(v) for k, v in obj.items())
    if isinstance(obj, list):
        n = len(obj)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
        return head + b"".join(pack(v) for v in obj)
    return msgpack.packb(obj, use_bin_type=True)


def body_of(msg: object) -> dict[str, Any]:
    """A valid message's Go-keyed body as a dict (decoded back from the project's encoder)."""
    raw = msgpack.unpackb(encode_body(msg), raw=False)  # type: ignore[arg-type]
    assert isinstance(raw, dict)
    return raw


def with_crc(payload: bytes) -> bytes:
    """memberlist's hasCrc layer (type 12, CRC-32 IEEE big-endian, then the payload)."""
    return bytes([MessageType.HAS_CRC]) + struct.pack(">I", zlib.crc32(payload)) + payload


# --------------------------------------------------------------------------- seeds


@dataclass(frozen=True)
class Seeds:
    """Captured datagrams and streams, and the bare messages found inside the datagrams."""

    udp: tuple[bytes, ...]
    tcp: tuple[bytes, ...]
    bare: tuple[bytes, ...]  # every message inside the plain/decryptable datagrams
    keys: dict[str, bytes]


def load_seeds(path: Path = SEEDS_PATH) -> Seeds:
    """Read the corpus and unwrap each datagram to its bare messages (for deep mutation)."""
    doc = json.loads(path.read_text())
    keys = {k: base64.b64decode(v) for k, v in doc["keys"].items()}
    udp = tuple(bytes.fromhex(v["hex"]) for v in doc["udp"])
    tcp = tuple(bytes.fromhex(v["hex"]) for v in doc["tcp"])
    bare: list[bytes] = []
    for v in doc["udp"]:
        data = bytes.fromhex(v["hex"])
        keyring = Keyring([keys[v["key"]]]) if v["key"] else None
        try:
            messages = decode_packet(data, keyring=keyring)
        except DecodeError:
            continue
        for m in messages:
            bare.append(encode_message(m))
    return Seeds(udp, tcp, tuple(dict.fromkeys(bare)), keys)


# --------------------------------------------------------------------------- mutation


def mutate(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """One to four random edits of `data` (bit flips, marker bytes, cuts, splices)."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        op = rng.randrange(8)
        n = len(buf)
        if n == 0:
            buf += rng.randbytes(rng.randint(1, 8))
            continue
        i = rng.randrange(n)
        if op == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[i] = rng.choice(_INTERESTING_BYTES)
        elif op == 2:
            buf[i] = rng.randrange(256)
        elif op == 3:
            buf[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 4:
            del buf[i : i + rng.randint(1, 16)]
        elif op == 5:
            del buf[i:]
        elif op == 6:
            j = rng.randrange(n)
            buf[j:j] = buf[i : i + rng.randint(1, 32)]
        elif others:
            other = rng.choice(others)
            buf[i:] = other[rng.randrange(len(other)) :] if other else b""
    return bytes(buf)


# --------------------------------------------------------------------------- factory


@dataclass(frozen=True)
class Target:
    """The cluster as the attacker knows it: member names and addresses."""

    attacked: str
    attacked_addr: tuple[str, int]
    healthy: tuple[tuple[str, tuple[str, int]], ...]  # every healthy member (name, addr)


class PacketFactory:
    """Builds hostile datagrams; `kind` names the generator used (for the per-kind counts)."""

    def __init__(self, seeds: Seeds, target: Target, rng: random.Random) -> None:
        self.seeds = seeds
        self.target = target
        self.rng = rng
        self._wrong = list(self._wrong_type_packets())
        self._wrong_i = 0
        self._nested = list(self._nested_packets())

    # -- generators of the udp-fuzz mix

    def fuzz(self) -> tuple[str, bytes]:
        """One packet of the udp-fuzz mix: (generator name, datagram)."""
        r = self.rng.random()
        if r < 0.40:
            return "mutate_captured", mutate(
                self.rng.choice(self.seeds.udp), self.rng, self.seeds.udp
            )
        if r < 0.75:
            return "mutate_deep", self.deep_mutation()
        if r < 0.85:
            return "random", self.random_packet()
        if r < 0.98:
            return "wrong_type", self.next_wrong_type()
        # LZW bombs cost the agent ~50 ms each on the current code: they have their own
        # attack (lzw-bomb) instead of a share of the million.
        return "nested", self.rng.choice(self._nested)

    def random_packet(self) -> bytes:
        """Random bytes; the first byte is a message type most of the time."""
        rng = self.rng
        body = rng.randbytes(rng.choice((0, 1, 2, 5, 17, 64, 300, 1400)))
        first = rng.choice((*range(14), 244, rng.randrange(256)))
        return bytes([first]) + body

    def deep_mutation(self) -> bytes:
        """Mutate bare messages from the corpus, then wrap them in valid outer layers.

        A mutated CRC'd or compressed capture fails its CRC or LZW check and never reaches
        the message decoders; rebuilding the layers around the mutated bodies does.
        """
        rng = self.rng
        parts = [
            mutate(rng.choice(self.seeds.bare), rng, self.seeds.bare)
            for _ in range(rng.choice((1, 1, 2, 3, 5)))
        ]
        parts = [p for p in parts if p and len(p) <= 0xFFFF] or [b"\x00"]
        payload = parts[0] if len(parts) == 1 else make_compound(parts)
        layer = rng.randrange(4)
        if layer == 1:
            payload = compress_message(payload)
        elif layer == 2:
            payload = with_crc(payload)
        elif layer == 3:
            payload = with_crc(compress_message(payload))
        return payload[:MAX_UDP]

    def next_wrong_type(self) -> bytes:
        """The next packet of the every-field-with-every-wrong-type cycle."""
        pkt = self._wrong[self._wrong_i % len(self._wrong)]
        self._wrong_i += 1
        return pkt

    @property
    def wrong_type_count(self) -> int:
        """Packets in one cycle of the wrong-type generator."""
        return len(self._wrong)

    def _templates(self) -> list[tuple[int, dict[str, Any]]]:
        t = self.target
        host, port = t.healthy[0][1]
        addr = ipaddress.ip_address(host).packed
        return [
            (
                MessageType.PING,
                body_of(
                    Ping(
                        seq_no=1,
                        node=t.attacked,
                        source_addr=addr,
                        source_node="x",
                        source_port=port,
                    )
                ),
            ),
            (
                MessageType.INDIRECT_PING,
                body_of(
                    IndirectPingReq(
                        seq_no=1,
                        target=addr,
                        port=port,
                        node=t.healthy[0][0],
                        nack=True,
                        source_addr=addr,
                        source_node="x",
                        source_port=port,
                    )
                ),
            ),
            (MessageType.ACK, body_of(AckResp(seq_no=1, payload=b"p"))),
            (MessageType.NACK, body_of(NackResp(seq_no=1))),
            (MessageType.SUSPECT, body_of(Suspect(incarnation=0, node="ghost", from_="x"))),
            (
                MessageType.ALIVE,
                body_of(
                    Alive(
                        incarnation=1,
                        node="ghost",
                        addr=addr,
                        port=1,
                        meta=b"",
                        vsn=bytes([1, 5, 2, 2, 5, 5]),
                    )
                ),
            ),
            (MessageType.DEAD, body_of(Dead(incarnation=0, node="ghost", from_="x"))),
            (MessageType.ERR, body_of(ErrResp(error="e"))),
            (MessageType.COMPRESS, body_of(Compress(buf=lzw_compress(b"\x05\x80"), algo=0))),
        ]

    def _wrong_type_packets(self) -> Iterator[bytes]:
        """Every field of every UDP message type with every wrong-typed value, missing,
        and with an unknown extra key; also Serf user messages with wrong-typed fields."""
        for kind, body in self._templates():
            for key in body:
                for _label, value in _wrong_values():
                    bad = dict(body)
                    bad[key] = value
                    yield bytes([kind]) + pack(bad)
                missing = {k: v for k, v in body.items() if k != key}
                yield bytes([kind]) + pack(missing)
            yield bytes([kind]) + pack({**body, "Unknown": [1, 2, 3]})
            for _label, value in _wrong_values():
                yield bytes([kind]) + pack(value)  # the whole body of the wrong type
        # Serf messages ride in user messages (type 8); their bodies get the same treatment.
        serf_templates: list[tuple[int, dict[str, Any]]] = [
            (0, {"LTime": 5, "Node": "ghost", "Prune": False}),  # leave intent
            (1, {"LTime": 5, "Node": "ghost"}),  # join intent
            (3, {"CC": True, "LTime": 7, "Name": "ev", "Payload": b"p"}),  # user event
            (
                4,
                {
                    "Addr": b"\x7f\x00\x00\x01",
                    "Filters": [],
                    "Flags": 0,
                    "ID": 1,
                    "LTime": 9,
                    "Name": "q",
                    "Payload": b"",
                    "Port": 1,
                    "RelayFactor": 0,
                    "SourceNode": "x",
                    "Timeout": 1_000_000,
                },
            ),  # query
            (5, {"Flags": 0, "From": "x", "ID": 1, "LTime": 9, "Payload": b""}),
        ]
        for stype, body in serf_templates:
            for key in body:
                for _label, value in _wrong_values():
                    bad = dict(body)
                    bad[key] = value
                    yield bytes([MessageType.USER, stype]) + pack(bad)

    def _nested_packets(self) -> Iterator[bytes]:
        """Compounds and compress layers nested past every sane depth, and wide compounds."""
        alive = encode_message(
            Alive(
                incarnation=1,
                node="nest",
                addr=b"\x7f\x00\x00\x01",
                port=9,
                meta=b"",
                vsn=bytes([1, 5, 2, 2, 5, 5]),
            )
        )
        for depth in (2, 8, 9, 16, 64):
            inner = alive
            for _ in range(depth):
                inner = make_compound([inner, b"\x0b" + pack({"SeqNo": 1})])
            if len(inner) <= MAX_UDP:
                yield inner
            inner = alive
            for _ in range(depth):
                inner = compress_message(inner)
                if len(inner) > MAX_UDP // 4:  # LZW of LZW grows: stop while it still fits
                    break
            yield inner
        yield make_compound([b"\x0b" + pack({"SeqNo": i}) for i in range(255)])
        # A compound whose header claims 255 parts of 65535 bytes, with nothing after it.
        yield bytes([MessageType.COMPOUND, 255]) + b"\xff\xff" * 255
        yield bytes([MessageType.COMPOUND, 0])

    # -- the crafted attacks

    def lzw_bomb_part(self, size: int = MIB + 1) -> bytes:
        """A compress message whose LZW body inflates to `size` bytes of zeros."""
        return compress_message(b"\x00" * size)

    def lzw_bomb_packet(self, parts: int = 31, size: int = MIB + 1) -> bytes:
        """One datagram with `parts` compressed parts, each over the 1 MiB budget."""
        part = self.lzw_bomb_part(size)
        return make_compound([part] * parts) if parts > 1 else part

    def bad_name_packets(self) -> list[bytes]:
        """Alives (and Serf intents) whose node name is not (or barely) valid UTF-8."""
        host, _port = self.target.attacked_addr
        addr = ipaddress.ip_address(host).packed
        out = []
        for i, name in enumerate(BAD_NAMES):
            body = {
                "Addr": addr,
                "Incarnation": 1,
                "Meta": b"",
                "Node": _RawStr(name),
                "Port": 40000 + i,
                "Vsn": bytes([1, 5, 2, 2, 5, 5]),
            }
            out.append(bytes([MessageType.ALIVE]) + pack(body))
            join = {"LTime": 1 << 20, "Node": _RawStr(name)}
            out.append(bytes([MessageType.USER, 1]) + pack(join))
        return out

    def spoof_packets(self, incarnation_of: Callable[[str], int]) -> list[tuple[str, bytes]]:
        """Suspect and dead about every healthy member, and forged alives taking their names."""
        out: list[tuple[str, bytes]] = []
        for name, (host, port) in self.target.healthy:
            inc = incarnation_of(name)
            addr = ipaddress.ip_address(host).packed
            out.append(
                ("suspect", encode_message(Suspect(incarnation=inc, node=name, from_="mallory")))
            )
            out.append(("dead", encode_message(Dead(incarnation=inc, node=name, from_="mallory"))))
            out.append(
                ("dead_as_leave", encode_message(Dead(incarnation=inc, node=name, from_=name)))
            )
            # A forged alive moving the member to an address nobody listens on.
            out.append(
                (
                    "alive_moved",
                    encode_message(
                        Alive(
                            incarnation=inc + 1,
                            node=name,
                            addr=addr,
                            port=(port + 1000) % 65536 or 1,
                            meta=b"",
                            vsn=bytes([1, 5, 2, 2, 5, 5]),
                        )
                    ),
                )
            )
        return out

    def incarnation_wrap_packets(self, victim: str, addr: tuple[str, int]) -> list[bytes]:
        """An alive at incarnation 0xFFFFFFFF for a healthy member, then a suspect at it."""
        host, port = addr
        packed = ipaddress.ip_address(host).packed
        alive = encode_message(
            Alive(
                incarnation=U32_MAX,
                node=victim,
                addr=packed,
                port=port,
                meta=b"",
                vsn=bytes([1, 5, 2, 2, 5, 5]),
            )
        )
        suspect = encode_message(Suspect(incarnation=U32_MAX, node=victim, from_="mallory"))
        return [alive, suspect]


def encrypt_for(keyring: Keyring | None, payload: bytes) -> bytes:
    """Wrap a datagram the way a member holding `keyring` would (or leave it plain)."""
    return encode_packet(payload, keyring=keyring) if keyring is not None else payload


# --------------------------------------------------------------------------- streams


def pushpull_lie_head(nodes: int = 20 * 1024 * 1024, join: bool = False) -> bytes:
    """Type byte and a push/pull header claiming `nodes` states (and no user state)."""
    return bytes([MessageType.PUSH_PULL]) + encode_body(
        PushPullHeader(nodes=nodes, user_state_len=0, join=join)
    )


EMPTY_STATE: Final = b"\x80"
"""A push/pull node state in one byte: an empty msgpack map (every field at its zero value)."""


def user_stream_head(length: int) -> bytes:
    """Type byte and header of a reliable user message of `length` bytes."""
    return bytes([MessageType.USER]) + encode_body(UserMsgHeader(user_msg_len=length))


def join_request(name: str, addr: tuple[str, int], keyring: Keyring | None) -> bytes:
    """A valid push/pull join request from a member called `name` (framed for the wire)."""
    host, port = addr
    state = PushNodeState(
        name=name,
        addr=ipaddress.ip_address(host).packed,
        port=port,
        incarnation=1,
        state=0,
        meta=b"",
        vsn=bytes([1, 5, 2, 2, 5, 5]),
    )
    payload = (
        bytes([MessageType.PUSH_PULL])
        + encode_body(PushPullHeader(nodes=1, user_state_len=0, join=True))
        + encode_body(state)
    )
    return frame_stream(payload, compress=False, keyring=keyring)


def frame_for(keyring: Keyring | None, payload: bytes) -> bytes:
    """A whole stream message framed for a cluster with `keyring` (compression off)."""
    return frame_stream(payload, compress=False, keyring=keyring)


__all__ = [
    "BAD_NAMES",
    "EMPTY_STATE",
    "MIB",
    "PacketFactory",
    "Seeds",
    "Target",
    "encrypt_for",
    "frame_for",
    "join_request",
    "load_seeds",
    "mutate",
    "pack",
    "pushpull_lie_head",
    "user_stream_head",
    "with_crc",
]
