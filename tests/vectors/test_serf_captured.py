"""Conformance corpus: packets captured from real serf agents decode with swimguard.wire.

The vectors (tests/vectors/serf-captured.json) were recorded by capture_serf.py from Debian
serf 0.9.4 agents; their "decoded" fields come from that tool's independent decoder. These
tests need no running serf.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from swimguard.serf import PushPull as SerfPushPull
from swimguard.serf import decode_message as decode_serf
from swimguard.serf import decode_tags
from swimguard.wire.encryption import Keyring
from swimguard.wire.errors import DecodeError
from swimguard.wire.messages import body_map
from swimguard.wire.packet import UserData, decode_packet
from swimguard.wire.stream import PushPull, StreamDecoder

DOC = json.loads(Path(__file__).with_name("serf-captured.json").read_text())
VECTORS = {v["name"]: v for v in DOC["vectors"]}
UDP = sorted(n for n, v in VECTORS.items() if v["proto"] == "udp")
TCP = sorted(n for n, v in VECTORS.items() if v["proto"] == "tcp")
TYPE_NAMES = {
    "Ping": "ping",
    "IndirectPingReq": "indirect_ping",
    "AckResp": "ack",
    "NackResp": "nack",
    "Suspect": "suspect",
    "Alive": "alive",
    "Dead": "dead",
}


def _expect(value: Any) -> Any:
    """JSON vector value -> Python (``"hex:..."`` -> bytes)."""
    if isinstance(value, str) and value.startswith("hex:"):
        return bytes.fromhex(value[4:])
    if isinstance(value, dict):
        return {k: _expect(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expect(v) for v in value]
    return value


def _keyring(vector: dict[str, Any]) -> Keyring | None:
    key = vector["key_b64"]
    return Keyring([base64.b64decode(key)]) if key else None


def _serf_fields(data: bytes) -> dict[str, Any]:
    msg = decode_serf(data)
    out: dict[str, Any] = {}
    for name in msg.__dataclass_fields__:
        value = getattr(msg, name)
        if name == "events":
            out["events_len"] = len(value)
            value = {str(i): repr(s) for i, s in enumerate(value) if s is not None}
        elif isinstance(value, tuple):
            value = list(value)
        elif hasattr(value, "items"):
            value = dict(value)
        out[name] = value
    return out


def test_corpus_covers_what_the_issue_asks_for() -> None:
    names = set(VECTORS)
    for needed in (
        "plain_alive",
        "plain_suspect",
        "plain_dead",
        "plain_compound_ping_suspect",
        "compressed_compressed",
        "encrypted_alive",
        "encrypted_compressed",
        "plain_push_pull_reply",
        "compressed_push_pull_reply",
        "encrypted_push_pull_reply",
        "plain_serf_join",
        "compressed_serf_leave",
        "plain_serf_user_event",
        "plain_serf_query",
        "plain_ack",
        "encrypted_ack",
    ):
        assert needed in names


@pytest.mark.parametrize("name", UDP)
def test_datagram_decodes_to_captured_fields(name: str) -> None:
    vector = VECTORS[name]
    messages = decode_packet(bytes.fromhex(vector["hex"]), keyring=_keyring(vector))
    expected = vector["decoded"]["messages"]
    assert len(messages) == len(expected)
    for got, want in zip(messages, expected, strict=True):
        if isinstance(got, UserData):
            assert want["type"] == "user"
            assert got.data == _expect(want["data"])
            assert _serf_fields(got.data) == _expect(want["serf"]["fields"])
        else:
            assert TYPE_NAMES[type(got).__name__] == want["type"]
            assert body_map(got) == _expect(want["body"])


@pytest.mark.parametrize("name", TCP)
def test_stream_decodes_to_captured_fields(name: str) -> None:
    vector = VECTORS[name]
    decoder = StreamDecoder(keyring=_keyring(vector))
    msg = decoder.feed(bytes.fromhex(vector["hex"]))
    assert isinstance(msg, PushPull)
    want = vector["decoded"]
    assert body_map(msg.header) == _expect(want["header"])
    assert [body_map(s) for s in msg.states] == _expect(want["states"])
    state = decode_serf(msg.user_state)
    assert isinstance(state, SerfPushPull)
    assert len(state.events) == 512
    assert _serf_fields(msg.user_state) == _expect(want["user_state"]["fields"])
    for node in msg.states:  # serf agents' tags survive the trip
        assert isinstance(decode_tags(node.meta), dict)


@pytest.mark.parametrize("name", [n for n in UDP if n.startswith("encrypted_")][:3])
def test_encrypted_datagrams_need_the_key(name: str) -> None:
    data = bytes.fromhex(VECTORS[name]["hex"])
    with pytest.raises(DecodeError):
        decode_packet(data, keyring=Keyring([bytes(32)]))
    with pytest.raises(DecodeError):
        decode_packet(data)


def test_encrypted_stream_needs_the_key() -> None:
    data = bytes.fromhex(VECTORS["encrypted_push_pull_reply"]["hex"])
    with pytest.raises(DecodeError):
        StreamDecoder(keyring=Keyring([bytes(32)])).feed(data)


def test_corrupted_crc_is_rejected() -> None:
    data = bytearray.fromhex(VECTORS["plain_alive"]["hex"])
    assert data[0] == 0x0C
    data[-1] ^= 0x01
    with pytest.raises(DecodeError):
        decode_packet(bytes(data))
