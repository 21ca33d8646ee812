"""The typed layer views match the layer trees recorded in the vectors."""

from __future__ import annotations

from typing import Any

import pytest
from wire_helpers import TYPE_NAMES, assert_fields, load, push_pull_header

from swimguard.wire import (
    CompoundError,
    DecodeError,
    Keyring,
    NackResp,
    PushPull,
    UserData,
    encode_message,
    encode_packet,
    encode_stream_message,
    frame_stream,
    make_compound,
)
from swimguard.wire.layers import (
    Checksummed,
    Compound,
    Compressed,
    Encrypted,
    EncryptedFrame,
    Labelled,
    inspect_packet,
    inspect_stream,
)
from swimguard.wire.packet import MAX_NESTING

PLAIN = load("memberlist-plain-captured.json")
ENCRYPTED = load("memberlist-encrypted-captured.json")
ENCODER = load("memberlist-go-encoder-vectors.json")["vectors"]
KEYRING = Keyring([bytes.fromhex(ENCRYPTED["key_hex"])])


def assert_tree(layer: object, decoded: dict[str, Any]) -> None:
    kind = decoded["type"]
    if kind == "hasCrc":
        assert isinstance(layer, Checksummed)
        assert decoded["crc_ok"]
        assert_tree(layer.inner, decoded["inner"])
    elif kind == "compound":
        assert isinstance(layer, Compound)
        assert len(layer.parts) == decoded["count"]
        assert layer.truncated == 0
        for part, want in zip(layer.parts, decoded["parts"], strict=True):
            assert_tree(part, want)
    elif kind in ("compress", "compress(stream)"):
        assert isinstance(layer, Compressed)
        assert layer.algo == decoded.get("algo", 0)
        assert_tree(layer.inner, decoded["inner"])
    elif kind == "user":
        assert isinstance(layer, UserData)
    elif kind == "pushPull":
        assert isinstance(layer, PushPull)
        assert layer.header == push_pull_header(decoded["header"])
    else:
        assert type(layer) is TYPE_NAMES[kind]
        assert_fields(layer, decoded["body"])  # type: ignore[arg-type]


@pytest.mark.parametrize("vector", PLAIN["udp"], ids=lambda v: v["name"])
def test_plain_packet_trees(vector: dict[str, Any]) -> None:
    assert_tree(inspect_packet(bytes.fromhex(vector["hex"])), vector["decoded"])


@pytest.mark.parametrize(
    "vector",
    [
        v
        for v in ENCODER
        if v["name"] in ("compound_ping_suspect", "crc_compound_ping_suspect", "compress_ping")
    ],
    ids=lambda v: v["name"],
)
def test_go_encoder_trees(vector: dict[str, Any]) -> None:
    assert_tree(inspect_packet(bytes.fromhex(vector["hex"])), vector["decoded"])


@pytest.mark.parametrize("vector", ENCRYPTED["udp"], ids=lambda v: v["name"])
def test_encrypted_packet_trees(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    layer = inspect_packet(data, keyring=KEYRING)
    assert isinstance(layer, Encrypted)
    assert (layer.version, layer.nonce) == (1, data[1:13])
    assert_tree(layer.inner, vector["decoded_plaintext"])


@pytest.mark.parametrize("vector", ENCRYPTED["tcp"], ids=lambda v: v["src"])
def test_encrypted_stream_trees(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    layer = inspect_stream(data, keyring=KEYRING)
    assert isinstance(layer, EncryptedFrame)
    assert (layer.length, layer.version) == (len(data) - 5, 1)
    assert_tree(layer.inner, vector["decoded_plaintext"])


@pytest.mark.parametrize("vector", PLAIN["tcp"], ids=lambda v: v["name"])
def test_plain_stream_trees(vector: dict[str, Any]) -> None:
    assert_tree(inspect_stream(bytes.fromhex(vector["hex"])), vector["decoded"])


def test_nesting_limit_matches_decode_packet() -> None:
    data = encode_message(NackResp(seq_no=1))
    for _ in range(MAX_NESTING):
        data = make_compound([data])
    assert inspect_packet(data) is not None
    with pytest.raises(CompoundError):
        inspect_packet(make_compound([data]))


def test_labels_and_truncated_compounds_are_reported() -> None:
    nack = encode_message(NackResp(seq_no=1))
    layer = inspect_packet(encode_packet(nack, label=b"east"))
    assert layer == Labelled(b"east", NackResp(seq_no=1))
    cut = make_compound([nack, nack, nack])[:-1]
    assert inspect_packet(cut) == Compound((NackResp(seq_no=1),) * 2, truncated=1)
    push_pull = PushPull(push_pull_header({"Nodes": 0, "UserStateLen": 0, "Join": True}), (), b"")
    framed = frame_stream(encode_stream_message(push_pull), compress=True, keyring=None, label=b"x")
    tree = inspect_stream(framed)
    assert isinstance(tree, Labelled)
    assert isinstance(tree.inner, Compressed)
    assert tree.inner.inner == push_pull


@pytest.mark.parametrize(
    "data", [b"", b"\x07", b"\x0a\x00\x00\x00\x09abc", b"\x06\xc1", b"\xf4\x01"]
)
def test_inspection_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        inspect_packet(data)
    with pytest.raises(DecodeError):
        inspect_stream(data, keyring=KEYRING)
