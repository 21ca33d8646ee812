"""Round trips of every message type through packets and streams, all layer combinations."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swimguard.wire import (
    AckResp,
    Alive,
    CompoundError,
    Dead,
    ErrResp,
    IndirectPingReq,
    Keyring,
    Message,
    NackResp,
    Ping,
    PushNodeState,
    PushPull,
    PushPullHeader,
    StreamDecoder,
    StreamMessage,
    Suspect,
    UserData,
    UserStream,
    decode_message,
    decode_packet,
    encode_message,
    encode_packet,
    encode_stream_message,
    frame_stream,
    make_compound,
)

VSN = bytes((1, 5, 2, 2, 5, 5))
ADDR4 = bytes((127, 0, 0, 1))
ADDR6 = bytes(15) + b"\x01"

MESSAGES: list[Message] = [
    Ping(seq_no=1, node="b", source_addr=ADDR4, source_node="a", source_port=7946),
    Ping(seq_no=0xFFFF_FFFF),
    IndirectPingReq(seq_no=7, target=ADDR6, port=7947, node="c", nack=True),
    AckResp(seq_no=9),
    AckResp(seq_no=9, payload=b""),
    AckResp(seq_no=9, payload=b"\x01" * 300),
    NackResp(seq_no=3),
    Suspect(incarnation=4, node="n", from_="m"),
    Alive(incarnation=1, node="ünï", addr=ADDR4, port=65535, meta=b"\xff\x80", vsn=VSN),
    Alive(incarnation=2**32 - 1, node="x" * 70_000, addr=ADDR6, port=1, meta=None, vsn=VSN),
    Dead(incarnation=5, node="n", from_="n"),
    UserData(b"\x00serf intent"),
]
STREAM_MESSAGES: list[StreamMessage] = [
    Ping(seq_no=5, node="b"),
    AckResp(seq_no=5),
    ErrResp(error="boom"),
    UserStream(b"reliable" * 100),
    UserStream(b""),
    PushPull(PushPullHeader(nodes=0, user_state_len=0, join=False), (), b""),
    PushPull(
        PushPullHeader(nodes=3, user_state_len=5, join=True),
        tuple(
            PushNodeState(
                name=f"node-{i}", addr=ADDR4, port=7946 + i, incarnation=i, state=i, vsn=VSN
            )
            for i in range(3)
        ),
        b"state",
    ),
]
KEYS = [bytes(range(16)), bytes(range(24)), bytes(range(32))]


def layers() -> list[dict[str, Any]]:
    """Every combination of the optional packet layers."""
    out = []
    for compress, crc, key, label in itertools.product(
        (False, True), (False, True), (None, *KEYS), (b"", b"cluster-a")
    ):
        for version in (0, 1) if key else (1,):
            out.append(
                {
                    "compress": compress,
                    "crc": crc,
                    "keyring": Keyring([key]) if key else None,
                    "encryption_version": version,
                    "label": label,
                }
            )
    return out


LAYERS = layers()


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trip(msg: Message) -> None:
    data = encode_message(msg)
    assert decode_message(data) == msg
    assert decode_packet(data) == [msg]


@pytest.mark.parametrize(
    "options", LAYERS, ids=lambda o: "-".join(f"{k}={v!r}"[:20] for k, v in o.items())
)
def test_packet_layers_round_trip(options: dict[str, Any]) -> None:
    payload = make_compound([encode_message(m) for m in MESSAGES[:9]])
    packet = encode_packet(payload, **options)
    decode_options = {k: options[k] for k in ("keyring", "label")}
    assert decode_packet(packet, **decode_options) == MESSAGES[:9]
    single = encode_packet(encode_message(MESSAGES[0]), **options)
    assert decode_packet(single, **decode_options) == [MESSAGES[0]]


def test_compression_is_used_only_when_shorter() -> None:
    compound = make_compound([encode_message(m) for m in MESSAGES[:9]] * 3)
    packet = encode_packet(compound, compress=True)
    assert packet[0] == 0x09
    assert len(packet) < len(compound)
    tiny = encode_message(NackResp(seq_no=1))
    assert encode_packet(tiny, compress=True) == tiny


def test_nested_compound_and_compress_flatten() -> None:
    inner = make_compound([encode_message(m) for m in MESSAGES[:3]])
    compressed = encode_packet(inner, compress=True)
    outer = make_compound([compressed, encode_message(MESSAGES[3]), inner])
    assert decode_packet(encode_packet(outer, crc=True)) == [
        *MESSAGES[:3],
        MESSAGES[3],
        *MESSAGES[:3],
    ]


def test_compound_limits() -> None:
    part = encode_message(NackResp(seq_no=1))
    assert decode_packet(make_compound([part] * 255)) == [NackResp(seq_no=1)] * 255
    assert decode_packet(make_compound([])) == []
    with pytest.raises(ValueError, match="255"):
        make_compound([part] * 256)
    with pytest.raises(ValueError, match="65535"):
        make_compound([b"\x08" + bytes(65535)])


def test_truncated_compound_keeps_earlier_parts_when_collecting_errors() -> None:
    good = encode_message(NackResp(seq_no=1))
    data = make_compound([good, good, good])[:-3]  # last part cut short
    with pytest.raises(CompoundError):
        decode_packet(data)
    errors: list[Any] = []
    assert decode_packet(data, errors=errors) == [NackResp(seq_no=1)] * 2
    assert [e.reason for e in errors] == ["compound"]


def test_bad_part_is_skipped_when_collecting_errors() -> None:
    good = encode_message(NackResp(seq_no=1))
    data = make_compound([good, b"\x00\xc1", b"\x63", good])
    errors: list[Any] = []
    assert decode_packet(data, errors=errors) == [NackResp(seq_no=1)] * 2
    assert [e.reason for e in errors] == ["body", "unknown_type"]


def test_encode_packet_rejects_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_packet(b"")
    with pytest.raises(ValueError, match="empty"):
        frame_stream(b"", compress=False, keyring=None)


STREAM_OPTIONS = [
    (compress, key, version, label)
    for compress, key, label in itertools.product((False, True), (None, *KEYS), (b"", b"lbl"))
    for version in ((0, 1) if key else (1,))
]


@pytest.mark.parametrize("msg", STREAM_MESSAGES, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize(("compress", "key", "version", "label"), STREAM_OPTIONS)
def test_stream_round_trip(
    msg: StreamMessage, compress: bool, key: bytes | None, version: int, label: bytes
) -> None:
    keyring = Keyring([key]) if key else None
    framed = frame_stream(
        encode_stream_message(msg),
        compress=compress,
        keyring=keyring,
        encryption_version=version,
        label=label,
    )
    for chunk in (1, 3, 64, len(framed)):
        decoder = StreamDecoder(keyring=keyring, label=label)
        results = [decoder.feed(framed[i : i + chunk]) for i in range(0, len(framed), chunk)]
        assert results[-1] == msg
        assert all(r is None for r in results[:-1])
        assert decoder.done
        decoder.eof()  # complete: no error
        assert decoder.feed(b"trailing bytes are ignored") is None


def test_push_pull_header_must_match_contents() -> None:
    with pytest.raises(ValueError, match="header counts"):
        encode_stream_message(PushPull(PushPullHeader(nodes=1, user_state_len=0), (), b""))
    with pytest.raises(ValueError, match="header counts"):
        encode_stream_message(PushPull(PushPullHeader(nodes=0, user_state_len=1), (), b""))


names = st.text(max_size=40)
u32 = st.integers(0, 2**32 - 1)
u16 = st.integers(0, 2**16 - 1)
blobs = st.binary(max_size=40)
vsns = st.sampled_from([b"", VSN, bytes(7)])
messages_st: st.SearchStrategy[Message] = st.one_of(
    st.builds(Ping, u32, names, blobs, names, u16),
    st.builds(IndirectPingReq, u32, blobs, u16, names, st.booleans(), blobs, names, u16),
    st.builds(AckResp, u32, st.none() | blobs),
    st.builds(NackResp, u32),
    st.builds(Suspect, u32, names, names),
    st.builds(Alive, u32, names, blobs, u16, st.none() | blobs, vsns),
    st.builds(Dead, u32, names, names),
    st.builds(UserData, st.binary(min_size=1, max_size=40)),
)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(messages_st, min_size=1, max_size=12), st.booleans(), st.booleans())
def test_random_messages_round_trip(messages: list[Message], compress: bool, crc: bool) -> None:
    # Surrogate-free text only: Go strings are bytes and we decode them as UTF-8.
    parts = [encode_message(m) for m in messages]
    payload = parts[0] if len(parts) == 1 else make_compound(parts)
    assert decode_packet(encode_packet(payload, compress=compress, crc=crc)) == messages


states_st = st.builds(
    PushNodeState, names, blobs, u16, u32, st.integers(0, 3), st.none() | blobs, vsns
)


@settings(
    max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(states_st, max_size=6), st.binary(max_size=100), st.booleans(), st.integers(1, 50))
def test_random_push_pull_round_trip(
    states: list[PushNodeState], user: bytes, join: bool, chunk: int
) -> None:
    msg = PushPull(PushPullHeader(len(states), len(user), join), tuple(states), user)
    framed = frame_stream(encode_stream_message(msg), compress=chunk % 2 == 0, keyring=None)
    decoder = StreamDecoder()
    got = None
    for i in range(0, len(framed), chunk):
        got = decoder.feed(framed[i : i + chunk]) or got
    assert got == msg
