"""Serf message codecs: byte-exact against captured serf traffic, round trips, bad input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimguard.serf import (
    Join,
    Leave,
    PushPull,
    Query,
    QueryResponse,
    Relay,
    SerfDecodeError,
    UserEvent,
    UserEventEntry,
    UserEvents,
    decode_message,
    encode_message,
)

# The recorded vectors the repository carries (tests/vectors/data/README.md).
SHARED = Path(__file__).resolve().parents[1] / "vectors" / "data" / "memberlist-plain-captured.json"


def _shared_udp() -> dict[str, bytes]:
    """Whole captured datagrams keyed by name (recorded vectors)."""
    doc = json.loads(SHARED.read_text())
    return {u["name"]: bytes.fromhex(u["hex"]) for u in doc["udp"]}


# Serf messages as they appear after memberlist's CRC header (5 bytes) and 0x08 user byte.
CAPTURED = {
    "crc_user_serf_join_intent": Join(1, "b"),
    "crc_user_serf_user_event": UserEvent(1, "deploy", b"v1", True),
    "crc_user_serf_leave_intent": Leave(2, "b", False),
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_gossip_messages_decode_and_reencode_byte_exact(name: str) -> None:
    packet = _shared_udp()[name]
    assert packet[0] == 0x0C
    assert packet[5] == 0x08
    serf = packet[6:]
    assert decode_message(serf) == CAPTURED[name]
    assert encode_message(CAPTURED[name]) == serf


def test_captured_query_and_ack_byte_exact() -> None:
    udp = _shared_udp()
    query_bytes = udp["crc_user_serf_query"][6:]
    query = decode_message(query_bytes)
    assert isinstance(query, Query)
    assert (query.name, query.payload, query.flags, query.ltime) == ("whoami", b"hello", 1, 1)
    assert query.reply_to == ("127.0.0.1", 17947)
    assert query.filters is None
    assert encode_message(query) == query_bytes
    ack_bytes = udp["user_serf_query_response_ack"][1:]  # direct UDP: no CRC
    ack = decode_message(ack_bytes)
    assert ack == QueryResponse(1, query.id, "b", 1, None)
    assert encode_message(ack) == ack_bytes


def test_captured_push_pull_user_state_byte_exact() -> None:
    doc = json.loads(SHARED.read_text())
    stream = bytes.fromhex(doc["tcp"][0]["hex"])
    unpacker = msgpack.Unpacker(raw=True)
    unpacker.feed(stream[1:])
    header = unpacker.unpack()
    for _ in range(header[b"Nodes"]):
        unpacker.unpack()
    user_state = stream[1 + unpacker.tell() :]
    assert len(user_state) == header[b"UserStateLen"]
    state = decode_message(user_state)
    assert isinstance(state, PushPull)
    assert len(state.events) == 512
    assert all(slot is None for slot in state.events)
    assert state.left_members == ()
    # Go writes StatusLTimes in random order; with one member the bytes are fixed.
    if len(state.status_ltimes) <= 1:
        assert encode_message(state) == user_state


names = st.text(max_size=20)
u64 = st.integers(0, (1 << 64) - 1)
blobs = st.binary(max_size=40)
entries = st.builds(UserEventEntry, names, blobs)
slots = st.none() | st.builds(UserEvents, u64, st.lists(entries, max_size=3).map(tuple))
messages = st.one_of(
    st.builds(Join, u64, names),
    st.builds(Leave, u64, names, st.booleans()),
    st.builds(UserEvent, u64, names, blobs, st.booleans()),
    st.builds(
        Query,
        ltime=u64,
        id=st.integers(0, 2**32 - 1),
        name=names,
        addr=blobs,
        port=st.integers(0, 65535),
        source_node=names,
        payload=blobs,
        filters=st.none() | st.lists(blobs, max_size=3).map(tuple),
        flags=st.integers(0, 3),
        relay_factor=st.integers(0, 255),
        timeout_ns=st.integers(-(2**63), 2**63 - 1),
    ),
    st.builds(
        QueryResponse, u64, st.integers(0, 2**32 - 1), names, st.integers(0, 3), st.none() | blobs
    ),
    st.builds(
        PushPull,
        ltime=u64,
        status_ltimes=st.dictionaries(names, u64, max_size=4),
        left_members=st.lists(names, max_size=3).map(tuple),
        event_ltime=u64,
        events=st.lists(slots, max_size=6).map(tuple),
        query_ltime=u64,
    ),
    st.builds(Relay, blobs, st.integers(0, 65535), names, blobs.filter(bool), names),
)


@given(messages)
def test_round_trip(msg: object) -> None:
    assert decode_message(encode_message(msg)) == msg  # type: ignore[arg-type]


def test_strings_are_old_spec_raw_never_str8_or_bin() -> None:
    data = encode_message(UserEvent(7, "x" * 40, b"y" * 40))
    assert b"\xd9" not in data
    assert b"\xc4" not in data
    assert b"\xda\x00\x28" + b"x" * 40 in data  # raw16, as go-msgpack 0.5.5 writes


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x0a\x80",  # unknown type
        b"\x06\x80",  # conflict response: only inside query payloads
        b"\x01",  # no body
        b"\x01\x93\x01\x02\x03",  # array body
        b"\x01\x82\xa5LTime\xa1x\xa4Node\xa1b",  # LTime not an int
        b"\x01\x82\xa5LTime\xff\xa4Node\xa1b",  # negative LTime
        b"\x00\x83\xa5LTime\x01\xa4Node\xa1b\xa5Prune\xa1x",  # Prune not a bool
        b"\x02\x81\xacStatusLTimes\x81\xa1a\xa1b",  # status time not an int
        b"\x02\x81\xa6Events\x91\x05",  # ring slot neither nil nor a map
        b"\x09\xc1",  # relay: bad header
        b"\x09\x80",  # relay without inner message
        b"\x01\x82\xa5LTime\xcf",  # truncated
    ],
)
def test_bad_input_raises_only_serf_decode_error(data: bytes) -> None:
    with pytest.raises(SerfDecodeError):
        decode_message(data)


@given(st.binary(max_size=200))
def test_fuzz_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(SerfDecodeError):
        decode_message(data)


def test_missing_keys_take_zero_values_and_unknown_keys_are_skipped() -> None:
    assert decode_message(b"\x01\x81\xa3Foo\x01") == Join(0, "")
    assert decode_message(b"\x05\x81\xa4From\xa1z") == QueryResponse(0, 0, "z", 0, None)
